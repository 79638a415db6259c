// AVX512 (F/BW/VL/VNNI) level. Entries not overridden here keep their AVX2
// kernels, which every AVX512 CPU runs.
#include <immintrin.h>

#include "../kernels.h"

namespace pyllama {

void fill_avx512(KernelTable& t) { (void)t; }

}  // namespace pyllama
