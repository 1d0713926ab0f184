# libFuzzer targets: tests/fuzz/fuzz_<name>.c with a seed corpus in
# tests/fuzz/corpus/<name>/. Each also becomes a bounded CTest run.
file(GLOB WH_FUZZERS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
foreach(src ${WH_FUZZERS})
  get_filename_component(name ${src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" short ${name})
  add_executable(${name} ${src})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/tests)
  # A UBSan finding must stop the run like an ASan one, not scroll past.
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined
                         -fno-sanitize-recover=undefined)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(${name} PRIVATE wharf::wharf_static)
  wh_link_app_if_used(${name} ${src})
  set(corpus ${CMAKE_BINARY_DIR}/corpus-${short})
  add_test(NAME fuzz.${short}
    COMMAND sh -c "mkdir -p ${corpus} && exec $<TARGET_FILE:${name}> -max_total_time=\${WH_FUZZ_SECONDS:-20} -timeout=5 ${corpus} ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${short}")
  set_tests_properties(fuzz.${short} PROPERTIES LABELS fuzz TIMEOUT 600)
endforeach()
