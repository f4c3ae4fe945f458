# Every tool's command-line parser (tools/*_cli.cpp, mpi_compare/*_cli.cpp, bench/*_cli.cpp): the
# manual page, the options and their checks, turning argv into options or into what to print and
# the exit status. CLI11 and the standard library only, no chanpool library, MPI, libfabric or
# Boost, so that the fuzz target (tests/fuzz/fuzz_tool_cli.cpp) and tests/tools/tool_cli_test.cpp
# link it cheaply; the tools link it too.
find_package(CLI11 REQUIRED)
add_library(chanpool_tool_cli STATIC
  ${CMAKE_CURRENT_LIST_DIR}/pool_map_cli.cpp
  ${CMAKE_CURRENT_LIST_DIR}/fanin_bench_cli.cpp
  ${CMAKE_CURRENT_LIST_DIR}/latency_bench_cli.cpp
  ${CMAKE_CURRENT_LIST_DIR}/chanpool_cleanup_cli.cpp
  ${PROJECT_SOURCE_DIR}/mpi_compare/mpi_latency_cli.cpp
  ${PROJECT_SOURCE_DIR}/mpi_compare/mpi_bandwidth_cli.cpp
  ${PROJECT_SOURCE_DIR}/mpi_compare/mpi_fanin_cli.cpp
  ${PROJECT_SOURCE_DIR}/mpi_compare/mpi_pool_cli.cpp
  ${PROJECT_SOURCE_DIR}/bench/boost_mq_latency_cli.cpp)
target_include_directories(chanpool_tool_cli PUBLIC
  ${CMAKE_CURRENT_LIST_DIR} ${CMAKE_CURRENT_LIST_DIR}/common ${PROJECT_SOURCE_DIR}/mpi_compare
  ${PROJECT_SOURCE_DIR}/bench ${CHANPOOL_GENERATED_INCLUDE})  # chanpool/version.h: --version
target_link_libraries(chanpool_tool_cli PUBLIC CLI11::CLI11)
target_compile_options(chanpool_tool_cli PRIVATE ${chanpool_warnings})
