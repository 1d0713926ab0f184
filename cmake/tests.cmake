# tests/helpers/no_uring.c: runs a program with io_uring refused by a seccomp
# filter (the fallback test), or says whether io_uring works here (--probe).
add_executable(no-uring ${CMAKE_SOURCE_DIR}/tests/helpers/no_uring.c)

# The io_uring variants: the suites that run event loops over real sockets
# registered a second time with WH_LOOP_BACKEND=io_uring, named NAME.uring
# and labelled uring (plus the original's labels, tsan included). Each first
# prints whether io_uring works on this machine: where it does not, the
# variant passes by testing the fallback to epoll, and says so.
function(wh_add_uring_variant name labels)
  add_test(NAME ${name}.uring
           COMMAND sh -c "\"$0\" --probe && exec \"$@\"" $<TARGET_FILE:no-uring> ${ARGN})
  set(env "WH_LOOP_BACKEND=io_uring;WH_BUILD_DIR=${CMAKE_BINARY_DIR};WH_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
  set_tests_properties(${name}.uring PROPERTIES LABELS "${labels};uring" TIMEOUT 600
                       ENVIRONMENT "${env}")
endfunction()

# Unit tests: tests/unit/test_<name>.c, each its own program (and process).
# A test whose file contains the marker "WH_TEST_LABELS: a b" gets those labels.
file(GLOB WH_UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c)
if(NOT WH_TLS) # built without libssl: nothing to test there
  list(FILTER WH_UNIT_TESTS EXCLUDE REGEX "/test_net_tls\\.c$")
endif()
foreach(src ${WH_UNIT_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/tests)
  target_link_libraries(${name} PRIVATE wharf::wharf_static)
  wh_link_app_if_used(${name} ${src})
  add_test(NAME unit.${name} COMMAND ${name})
  file(STRINGS ${src} labels REGEX "WH_TEST_LABELS:")
  set(lbl unit)
  if(labels)
    string(REGEX REPLACE ".*WH_TEST_LABELS:[ ]*" "" labels "${labels}")
    # Only words count: the marker may sit in a comment or a docstring.
    string(REGEX MATCHALL "[A-Za-z0-9_]+" labels "${labels}")
    list(APPEND lbl ${labels})
  endif()
  set_tests_properties(unit.${name} PROPERTIES LABELS "${lbl}" TIMEOUT 300)
  # Tests that run a loop (directly, or through the HTTP test host or a server).
  file(STRINGS ${src} runs_loop REGEX "wh_loop_|http_host\\.h|wh_server_")
  if(runs_loop)
    wh_add_uring_variant(unit.${name} "${lbl}" $<TARGET_FILE:${name}>)
  endif()
endforeach()

# Integration tests start the real binaries. Python ones run under
# /usr/bin/python3 so Debian's python3-* packages import.
file(GLOB WH_INTEG CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/integration/test_*.py
     ${CMAKE_SOURCE_DIR}/tests/integration/test_*.sh
     ${CMAKE_SOURCE_DIR}/tests/integration/test_*.mjs)
if(NOT WH_TLS)
  list(FILTER WH_INTEG EXCLUDE REGEX "/test_tls_")
endif()
foreach(src ${WH_INTEG})
  get_filename_component(name ${src} NAME_WE)
  get_filename_component(ext ${src} EXT)
  set(lbl integration)
  if(ext STREQUAL ".py")
    set(cmd /usr/bin/python3 ${src})
  elseif(ext STREQUAL ".sh")
    set(cmd bash ${src})
  else()
    set(cmd node ${src})
    list(APPEND lbl browser)
  endif()
  file(STRINGS ${src} labels REGEX "WH_TEST_LABELS:")
  if(labels)
    string(REGEX REPLACE ".*WH_TEST_LABELS:[ ]*" "" labels "${labels}")
    # Only words count: the marker may sit in a comment or a docstring.
    string(REGEX MATCHALL "[A-Za-z0-9_]+" labels "${labels}")
    list(APPEND lbl ${labels})
  endif()
  add_test(NAME integ.${name} COMMAND ${cmd})
  set_tests_properties(integ.${name} PROPERTIES LABELS "${lbl}" TIMEOUT 600
    ENVIRONMENT "WH_BUILD_DIR=${CMAKE_BINARY_DIR};WH_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
  # The Python suites of the layers over the loop and the ones that start
  # wharfd (the browser, multi-host and lab tests stay on the default).
  if(ext STREQUAL ".py" AND name MATCHES "^test_(net|runtime|http|ws|wharfd|tls|guestbook)_")
    wh_add_uring_variant(integ.${name} "${lbl}" ${cmd})
  endif()
  # The same test again over TLS (WH_TEST_TLS=1: an https:// or wss://
  # listener and clients that trust the test's CA), for the suites whose
  # clients switch.
  if(WH_TLS AND name MATCHES "^(test_wharfd_static|test_ws_conformance)$")
    add_test(NAME integ.${name}.tls COMMAND ${cmd})
    set_tests_properties(integ.${name}.tls PROPERTIES LABELS "${lbl};tls" TIMEOUT 600
      ENVIRONMENT "WH_BUILD_DIR=${CMAKE_BINARY_DIR};WH_SOURCE_DIR=${CMAKE_SOURCE_DIR};WH_TEST_TLS=1")
  endif()
endforeach()

# Install tests: `cmake --install` this build into a temporary prefix and use
# it from outside, as a library user would (tests/install/). Only for an
# uninstrumented build with the shared library: a consumer of a sanitized
# libwharf.so would need the sanitizer runtime preloaded.
if(WH_SHARED AND NOT WH_SANITIZED)
  find_program(WH_CXX_FOR_TESTS NAMES c++ g++ clang++)
  file(GLOB WH_INSTALL_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/install/test_*.sh)
  foreach(src ${WH_INSTALL_TESTS})
    get_filename_component(name ${src} NAME_WE)
    string(REGEX REPLACE "^test_" "" name ${name})
    add_test(NAME install.${name} COMMAND bash ${src})
    set_tests_properties(install.${name} PROPERTIES LABELS "integration;install" TIMEOUT 600
      ENVIRONMENT "WH_BUILD_DIR=${CMAKE_BINARY_DIR};WH_SOURCE_DIR=${CMAKE_SOURCE_DIR};WH_CMAKE=${CMAKE_COMMAND};CC=${CMAKE_C_COMPILER};CXX=${WH_CXX_FOR_TESTS}")
  endforeach()
endif()

# The API reference builds (a broken Doxyfile or a doxygen error fails; its
# warnings are shown, not fatal: the header comments are plain C comments).
if(DOXYGEN_FOUND AND NOT WH_SANITIZED) # once, in the plain build
  add_test(NAME docs.api COMMAND sh -c
    "'${CMAKE_COMMAND}' --build '${CMAKE_BINARY_DIR}' --target docs && test -f '${WH_DOXYGEN_OUT}/html/index.html' && if [ -s '${WH_DOXYGEN_OUT}/warnings.log' ]; then echo 'doxygen warnings:'; cat '${WH_DOXYGEN_OUT}/warnings.log'; fi")
  set_tests_properties(docs.api PROPERTIES LABELS "integration;docs" TIMEOUT 300)
endif()
