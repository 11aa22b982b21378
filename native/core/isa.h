// The one instruction-set detector every kernel family (packed GEMM, step kernels) dispatches on.
#pragma once

namespace rnnkit {

enum Isa : int { kGeneric = 0, kAvx2 = 1, kAvx512 = 2, kAuto = -1 };

// "generic", "avx2", "avx512".
const char* isa_name(int isa);
// kAuto for null, empty or unknown names.
int parse_isa(const char* name);
// Best kernels the CPU (and OS: __builtin_cpu_supports checks XCR0) can run. The AVX-512 files are
// built with -mavx512f/dq/bw/vl -mfma, so the compiler may use any of those: all are required.
int best_isa();
// The best ISA, or RNNKIT_ISA if set to one this CPU can run (read once; tests use it to cover
// every build of the kernels).
int default_isa();

}  // namespace rnnkit
