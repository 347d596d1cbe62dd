# tests/fuzz/sanitizers.cmake — compile flags of a fuzz build (FERRY_FUZZ=ON), included by the top
# CMakeLists before any room so the readers under test carry libFuzzer's coverage instrumentation
# and AddressSanitizer + UndefinedBehaviorSanitizer. Any UB report aborts (no recovery): a fuzz run
# must stop on the first one, and a replayed regression input must fail the build's check.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "FERRY_FUZZ needs clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++ "
                      "-DCMAKE_C_COMPILER=clang (scripts/fuzz.sh does)")
endif()
if(FERRY_HAVE_CUDA OR FERRY_HAVE_MPI)
  message(FATAL_ERROR "FERRY_FUZZ builds the host readers only: configure with -DFERRY_CUDA=OFF -DFERRY_MPI=OFF")
endif()
# -O1: fast enough to fuzz, close enough to the source that reports point at the right line.
set(CMAKE_CXX_FLAGS_RELEASE "-O1 -g")
set(CMAKE_C_FLAGS_RELEASE "-O1 -g")
add_compile_options(-fsanitize=address,undefined -fsanitize=fuzzer-no-link -fno-sanitize-recover=all
                    -fno-omit-frame-pointer)
add_link_options(-fsanitize=address,undefined)
