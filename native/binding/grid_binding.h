// N-API entry points of prepared stacks and the grid driver (see grid_binding.cc).
#pragma once
#include <napi.h>

namespace rnnkit {
namespace binding {

void register_grid(Napi::Env env, Napi::Object exports);

}  // namespace binding
}  // namespace rnnkit
