# tests/mpi.cmake — the tests that need MPI (included by tests/CMakeLists.txt).
#   *_mpi_test.cpp         one executable each, run under `mpirun -np N` for every N listed on a
#                          "ferry-mpi-ranks: 2 4" line in the file (default 2 and 4); label mpi
#                          (*_gpu_mpi_test.cpp: labels mpi and gpu, and any skip reports as skipped,
#                          as for the gpu tests of tests/CMakeLists.txt; all ranks agree on it)
#   rank_failure_launch    launches mpirun itself: one rank dies or fails, the job must end; label mpi
#   tests/slurm/run_slurm_test.sh   a real Slurm on localhost runs a 2-rank `ferry pretrain`; label slurm
#                          (installs slurm-wlm and munge when missing: run it alone, `ctest -L slurm`)
if(NOT FERRY_HAVE_MPI)
  message(STATUS "ferry: MPI not found, mpi and slurm tests not registered")
  return()
endif()

# As root mpirun needs --allow-run-as-root; more ranks than cores need --oversubscribe.
set(FERRY_MPIRUN ${MPIEXEC_EXECUTABLE})
set(FERRY_MPIRUN_FLAGS --allow-run-as-root --oversubscribe)

# A gtest main that starts MPI, prints from rank 0 (and failures from every rank) and agrees on
# the result. Only mpi tests get it: tests/support/ is linked into every test.
add_library(ferry_mpi_test_main STATIC ${CMAKE_CURRENT_SOURCE_DIR}/parallel/mpi_main.cpp)
target_link_libraries(ferry_mpi_test_main PUBLIC ferry_parallel GTest::gtest)
add_library(ferry_gpu_mpi_test_main STATIC ${CMAKE_CURRENT_SOURCE_DIR}/parallel/mpi_main.cpp)
target_link_libraries(ferry_gpu_mpi_test_main PUBLIC ferry_parallel GTest::gtest)
target_compile_definitions(ferry_gpu_mpi_test_main PRIVATE FERRY_GPU_TEST_MAIN=1)

file(GLOB_RECURSE FERRY_MPI_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_mpi_test.cpp)
foreach(src ${FERRY_MPI_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  if(name MATCHES "_gpu_mpi_test$")
    target_link_libraries(${name} PRIVATE ferry_gpu_mpi_test_main)
    set(labels "mpi;gpu")
  else()
    target_link_libraries(${name} PRIVATE ferry_mpi_test_main)
    set(labels mpi)
  endif()
  set(ranks 2 4)
  file(STRINGS ${src} ranks_line REGEX "ferry-mpi-ranks:" LIMIT_COUNT 1)
  if(ranks_line)
    string(REGEX REPLACE ".*ferry-mpi-ranks:[ ]*" "" ranks "${ranks_line}")
    separate_arguments(ranks)
  endif()
  foreach(np ${ranks})
    add_test(NAME ${name}_np${np}
             COMMAND ${FERRY_MPIRUN} ${FERRY_MPIRUN_FLAGS} -np ${np} $<TARGET_FILE:${name}> --gtest_brief=1)
    set_tests_properties(${name}_np${np} PROPERTIES LABELS "${labels}" TIMEOUT 300 PROCESSORS ${np}
      SKIP_RETURN_CODE 77 ENVIRONMENT "OMP_NUM_THREADS=1")
  endforeach()
endforeach()

# A small MPI program with failure modes (and a ping the Slurm job runs).
add_executable(ferry_mpi_probe ${CMAKE_CURRENT_SOURCE_DIR}/parallel/mpi_probe.cpp)
target_link_libraries(ferry_mpi_probe PRIVATE ferry_parallel)

add_executable(rank_failure_launch_test ${CMAKE_CURRENT_SOURCE_DIR}/parallel/rank_failure_launch.cpp)
target_link_libraries(rank_failure_launch_test PRIVATE ferry_cpu_test_main)
string(JOIN " " FERRY_MPIRUN_LINE ${FERRY_MPIRUN} ${FERRY_MPIRUN_FLAGS})
target_compile_definitions(rank_failure_launch_test PRIVATE
  FERRY_MPIRUN="${FERRY_MPIRUN_LINE}" FERRY_MPI_PROBE="$<TARGET_FILE:ferry_mpi_probe>")
add_dependencies(rank_failure_launch_test ferry_mpi_probe)
add_test(NAME rank_failure_launch_test COMMAND rank_failure_launch_test --gtest_brief=1)
set_tests_properties(rank_failure_launch_test PROPERTIES LABELS mpi TIMEOUT 400 PROCESSORS 2 SKIP_RETURN_CODE 77)

add_test(NAME slurm_localhost_test
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/slurm/run_slurm_test.sh $<TARGET_FILE:ferry>)
set_tests_properties(slurm_localhost_test PROPERTIES LABELS slurm TIMEOUT 300 RUN_SERIAL TRUE SKIP_RETURN_CODE 77)

add_test(NAME multinode_script_test
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/parallel/multinode_script_test.sh ${CMAKE_SOURCE_DIR}
                 $<TARGET_FILE:ferry_mpi_probe>)
set_tests_properties(multinode_script_test PROPERTIES LABELS mpi TIMEOUT 120 PROCESSORS 2)

# `ferry pretrain` under mpirun (tp2×dp2 on 4 ranks, pp2 on 2) writes one process's losses.
add_test(NAME pretrain_mpirun_test
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/parallel/pretrain_mpirun_test.sh "${FERRY_MPIRUN_LINE}"
                 $<TARGET_FILE:ferry> ${CMAKE_SOURCE_DIR})
set_tests_properties(pretrain_mpirun_test PROPERTIES LABELS mpi TIMEOUT 300 PROCESSORS 2)

# `ferry finetune` under mpirun (sentiment and NER with dp2, NER with tp2) writes one process's losses.
add_test(NAME finetune_mpirun_test
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/parallel/finetune_mpirun_test.sh "${FERRY_MPIRUN_LINE}"
                 $<TARGET_FILE:ferry>)
set_tests_properties(finetune_mpirun_test PROPERTIES LABELS mpi TIMEOUT 600 PROCESSORS 2 SKIP_RETURN_CODE 77)
