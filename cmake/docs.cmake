# `cmake --build <build> --target docs`: the HTML API reference of the public
# headers, in <build>/docs/html. Not part of ALL: doxygen is a test-time
# dependency (scripts/deps.sh test), not a build one.
find_package(Doxygen QUIET)
if(DOXYGEN_FOUND)
  set(WH_DOXYGEN_OUT ${CMAKE_BINARY_DIR}/docs)
  configure_file(${CMAKE_SOURCE_DIR}/docs/Doxyfile.in ${CMAKE_BINARY_DIR}/Doxyfile @ONLY)
  file(GLOB WH_DOC_INPUTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/include/wharf/*.h
       ${CMAKE_SOURCE_DIR}/docs/*.md)
  add_custom_target(docs
    COMMAND ${CMAKE_COMMAND} -E make_directory ${WH_DOXYGEN_OUT}
    COMMAND Doxygen::doxygen ${CMAKE_BINARY_DIR}/Doxyfile
    COMMAND ${CMAKE_COMMAND} -E echo "docs: ${WH_DOXYGEN_OUT}/html/index.html (warnings: ${WH_DOXYGEN_OUT}/warnings.log)"
    DEPENDS ${WH_DOC_INPUTS} ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/cmake/doxygen-filter.sed
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
    COMMENT "Generating the API reference with Doxygen"
    VERBATIM)
else()
  # Configure must not depend on doxygen; asking for the docs without it is
  # an error that says what to install.
  add_custom_target(docs
    COMMAND ${CMAKE_COMMAND} -E echo "docs: doxygen not found; install it (apt-get install doxygen, or scripts/deps.sh test) and re-run cmake"
    COMMAND ${CMAKE_COMMAND} -E false
    VERBATIM)
endif()
