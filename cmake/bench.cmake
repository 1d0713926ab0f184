# Benchmarks are programs, never tests: bench/*.c, run by bench/*.sh scripts.
pkg_check_modules(LIBUV IMPORTED_TARGET libuv)
pkg_check_modules(LIBEVENT IMPORTED_TARGET libevent)
file(GLOB WH_BENCH_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/bench/*.c)
foreach(src ${WH_BENCH_SOURCES})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(${name} PRIVATE wharf::wharf_static)
  wh_link_app_if_used(${name} ${src})
  if(LIBUV_FOUND)
    target_link_libraries(${name} PRIVATE PkgConfig::LIBUV)
    target_compile_definitions(${name} PRIVATE WH_HAVE_LIBUV=1)
  endif()
  if(LIBEVENT_FOUND)
    target_link_libraries(${name} PRIVATE PkgConfig::LIBEVENT)
    target_compile_definitions(${name} PRIVATE WH_HAVE_LIBEVENT=1)
  endif()
endforeach()

# A smoke test of bench/compare.sh (wharfd and the ceiling, plaintext, 1 s):
# it starts real servers and wrk and takes a while, so it is registered only
# on request and carries the label "bench"; scripts/test.sh never sees it.
#   cmake -DWH_BENCH_SMOKE=ON build/release && ctest --test-dir build/release -L bench
option(WH_BENCH_SMOKE "Register the bench.compare_smoke test (label bench)" OFF)
if(WH_BENCH_SMOKE)
  add_test(NAME bench.compare_smoke
           COMMAND env DURATION=1 ${CMAKE_SOURCE_DIR}/bench/compare.sh --quick --strict
                   --only plaintext,connclose --servers wharfd,ceiling
                   --out ${CMAKE_BINARY_DIR}/compare-smoke ${CMAKE_BINARY_DIR})
  set_tests_properties(bench.compare_smoke PROPERTIES LABELS bench TIMEOUT 300 RUN_SERIAL ON)
endif()
