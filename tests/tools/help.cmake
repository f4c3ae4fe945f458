# The tools' manual pages (man-style --help for every tool): one test per tool that
# exists in this build, tools.help_<tool>, run by tests/tools/help_test.py (headings in order,
# every option with its default and in the synopsis, examples that use real options, exit 0 for
# --help and 2 for a bad option). Included from tests/tools/CMakeLists.txt:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/help.cmake)
# A new tool joins by adding its target to chanpool_help_tools (its --help must use
# tools/common/man_help.hpp or print the same layout).
find_package(Python3 REQUIRED COMPONENTS Interpreter)
set(chanpool_help_tools pool_map latency_bench fanin_bench chanpool_cleanup boost_mq_latency mpi_latency mpi_bandwidth
                        mpi_fanin mpi_pool_round mpi_pool_dynamic)
foreach(tool IN LISTS chanpool_help_tools)
  if(TARGET ${tool})
    # --help is parsed before MPI_Init in the MPI tools: no launcher needed.
    add_test(NAME tools.help_${tool}
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/help_test.py $<TARGET_FILE:${tool}>)
    set_tests_properties(tools.help_${tool} PROPERTIES TIMEOUT 120 LABELS tools)
  endif()
endforeach()
