# Latency baselines compared against `latency_bench --transport shm` by
# scripts/compare_latency.sh; included from bench/CMakeLists.txt.
add_executable(boost_mq_latency ${CMAKE_CURRENT_LIST_DIR}/boost_mq_latency.cpp)
target_link_libraries(boost_mq_latency PRIVATE chanpool_tool_support chanpool_tool_cli Boost::headers Threads::Threads)
target_compile_options(boost_mq_latency PRIVATE ${chanpool_warnings})

# Boost.Interprocess calls shm_open/shm_unlink, which live in librt before glibc 2.34.
include(CheckSymbolExists)
check_symbol_exists(shm_open "sys/mman.h" CHANPOOL_SHM_OPEN_IN_LIBC)
if(NOT CHANPOOL_SHM_OPEN_IN_LIBC)
  target_link_libraries(boost_mq_latency PRIVATE rt)
endif()

install(TARGETS boost_mq_latency RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
