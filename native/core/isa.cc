#include "isa.h"

#include <cstdlib>
#include <cstring>

namespace rnnkit {

namespace {
const char* const kIsaNames[] = {"generic", "avx2", "avx512"};

int detect_isa() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma"))
    return kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return kAvx2;
#endif
  return kGeneric;
}
}  // namespace

const char* isa_name(int isa) { return isa >= kGeneric && isa <= kAvx512 ? kIsaNames[isa] : "auto"; }

int parse_isa(const char* name) {
  if (name == nullptr || *name == '\0') return kAuto;
  for (int i = 0; i < 3; ++i)
    if (std::strcmp(name, kIsaNames[i]) == 0) return i;
  return kAuto;
}

int best_isa() {
  static const int best = detect_isa();
  return best;
}

int default_isa() {
  static const int isa = [] {
    const int env = parse_isa(std::getenv("RNNKIT_ISA"));
    return env != kAuto && env <= best_isa() ? env : best_isa();
  }();
  return isa;
}

}  // namespace rnnkit
