# How pyllama's native code is compiled, shared by the extension module
# (CMakeLists.txt) and the kernel self-test (tests/native/selftest/), so that
# the self-test's kernels, cross-compiled or not, are the wheel's.
#
#   pyllama_version(VAR)        the version, read from pyllama/_version.py (its one source)
#   pyllama_target_arch(VAR)    x86_64 | aarch64 | multi | another CMAKE_SYSTEM_PROCESSOR
#   pyllama_native_options(TGT) flags, floating-point rules and the ISA variant sources

set(PYLLAMA_ROOT ${CMAKE_CURRENT_LIST_DIR}/..)

function(pyllama_version out)
  set(file ${PYLLAMA_ROOT}/pyllama/_version.py)
  file(STRINGS ${file} line REGEX "^__version__ = ")
  if(NOT line MATCHES "^__version__ = \"([^\"]+)\"")
    message(FATAL_ERROR "no __version__ = \"...\" line in ${file}")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${file})
  set(${out} ${CMAKE_MATCH_1} PARENT_SCOPE)
endfunction()

# The architecture the code is compiled *for*, never the build machine's: on
# Apple the one of CMAKE_OSX_ARCHITECTURES (scikit-build-core sets it from
# ARCHFLAGS; cibuildwheel builds x86_64 wheels on arm64 runners that way),
# elsewhere CMAKE_SYSTEM_PROCESSOR, which is the target's (a cross toolchain
# file sets it; without one target and host are the same machine). Several
# Apple architectures in one binary (universal2) cannot share an x86-only
# source file: "multi" builds the portable kernels alone.
function(pyllama_target_arch out)
  if(APPLE AND CMAKE_OSX_ARCHITECTURES)
    list(LENGTH CMAKE_OSX_ARCHITECTURES n)
    if(n GREATER 1)
      set(arch multi)
    else()
      set(arch ${CMAKE_OSX_ARCHITECTURES})
    endif()
  else()
    set(arch ${CMAKE_SYSTEM_PROCESSOR})
  endif()
  string(TOLOWER "${arch}" arch)
  if(arch MATCHES "^(x86_64|amd64|x64)$")
    set(arch x86_64)
  elseif(arch MATCHES "^(aarch64|arm64|armv8.*)$")
    set(arch aarch64)
  endif()
  set(${out} ${arch} PARENT_SCOPE)
endfunction()

function(pyllama_native_options target)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    message(FATAL_ERROR "pyllama's native code needs GCC or Clang (found ${CMAKE_CXX_COMPILER_ID})")
  endif()
  # Floating point: no contraction of a * b + c into a fused multiply-add
  # anywhere in the target. Compilers differ in their default (GCC: "fast" in
  # its GNU dialects, so every a * b + c on aarch64 or in a -mfma file would
  # round once; Clang: "on") and the results with them; ggml's dequantization
  # rounds the product and the sum apart; and the generic kernels then give the
  # same bits on every architecture (the kernel self-test checks x86-64 against
  # aarch64). Fused multiply-adds are written where they are meant: std::fma,
  # _mm256_fmadd_ps.
  target_compile_options(${target} PRIVATE -O3 -Wall -Wextra -ffp-contract=off)

  # The baseline build targets the architecture's baseline (x86-64: SSE2); SIMD
  # variants are separate files compiled with their own flags, picked at run
  # time by CPUID (native/kernels/isa.cpp). ARM64 runs the portable kernels
  # (NEON, part of its baseline, through the compiler's vectorizer).
  pyllama_target_arch(arch)
  set(kernels ${PYLLAMA_ROOT}/native/kernels)
  if(arch STREQUAL "x86_64")
    target_sources(${target} PRIVATE ${kernels}/x86/vec_dot_avx2.cpp ${kernels}/x86/vec_dot_avx512.cpp)
    set_source_files_properties(${kernels}/x86/vec_dot_avx2.cpp TARGET_DIRECTORY ${target}
      PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
    set_source_files_properties(${kernels}/x86/vec_dot_avx512.cpp TARGET_DIRECTORY ${target}
      PROPERTIES COMPILE_OPTIONS "-mavx512f;-mavx512bw;-mavx512vl;-mavx512dq;-mavx512vnni;-mavx2;-mfma;-mf16c")
    target_compile_definitions(${target} PRIVATE PYLLAMA_X86=1)
    set(variants "generic, avx2, avx512 (chosen at run time)")
  else()
    set(variants "generic")
  endif()
  message(STATUS "pyllama: ${target} for ${arch}: kernels ${variants}")
endfunction()
