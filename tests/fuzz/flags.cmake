# Included by the top-level CMakeLists.txt before any target when
# FERRY_FUZZ is on: instruments the code for libFuzzer's coverage and with
# ASan/UBSan. The fuzz executables add -fsanitize=fuzzer themselves
# (tests/fuzz/CMakeLists.txt).
#
# Component modules (MODULE libraries) are left alone: they link with
# -Wl,-z,defs, and clang's static sanitizer runtimes live in the executable,
# so an instrumented module could not resolve them at link time. The fuzz
# targets load no module.
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR
    "FERRY_FUZZ needs clang (configure with -DCMAKE_C_COMPILER=clang)")
endif()
set(_not_module "$<NOT:$<STREQUAL:$<TARGET_PROPERTY:TYPE>,MODULE_LIBRARY>>")
add_compile_options(
  "$<${_not_module}:-fsanitize=fuzzer-no-link,address,undefined>"
  "$<${_not_module}:-fno-omit-frame-pointer>"
  "$<${_not_module}:-fno-sanitize-recover=undefined>")
add_link_options("$<${_not_module}:-fsanitize=address,undefined>")
