# Prints the architecture cmake/PyllamaNative.cmake compiles for, given what a
# configure step would set: tests/native/test_kernel_selftest.py runs
#   cmake -DAPPLE=1 -DCMAKE_OSX_ARCHITECTURES=x86_64 -DCMAKE_SYSTEM_PROCESSOR=arm64 -P target_arch.cmake
include(${CMAKE_CURRENT_LIST_DIR}/../../../cmake/PyllamaNative.cmake)
pyllama_target_arch(arch)
message("${arch}")
