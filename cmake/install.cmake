# `cmake --install <build> [--prefix P]`: libwharf (shared + static), its
# public headers, wharf.pc, the CMake package wharf::, wharfd with its man
# page and systemd unit, and the documentation.
# Components: Runtime (what running wharfd or a program linked to
# libwharf.so needs), Development (building against libwharf), Docs.
include(CMakePackageConfigHelpers)

set(WH_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/wharf)

install(TARGETS ${WH_LIB_TARGETS} EXPORT wharfTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Runtime
          NAMELINK_COMPONENT Development
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Development)
# A directory install globs at install time: a header added to include/wharf
# is installed without re-running cmake.
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/wharf/
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/wharf COMPONENT Development
  FILES_MATCHING PATTERN "*.h")

install(EXPORT wharfTargets NAMESPACE wharf:: DESTINATION ${WH_CMAKE_DIR}
        COMPONENT Development)
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/wharfConfig.cmake.in
  ${CMAKE_BINARY_DIR}/wharfConfig.cmake INSTALL_DESTINATION ${WH_CMAKE_DIR})
# Before 1.0 the API still changes between minor versions (0.1 -> 0.2), so a
# request for 0.1 must not accept 0.2.
write_basic_package_version_file(${CMAKE_BINARY_DIR}/wharfConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/wharfConfig.cmake ${CMAKE_BINARY_DIR}/wharfConfigVersion.cmake
        DESTINATION ${WH_CMAKE_DIR} COMPONENT Development)

# Files that must name absolute install paths (wharf.pc's prefix, the unit's
# ExecStart) are written at install time, so `cmake --install --prefix P` and
# DESTDIR staging both get P, not the prefix seen at configure time.
function(wh_install_configured template name destination component)
  cmake_parse_arguments(arg "" "REPLACE;WITH" "" ${ARGN})
  # The policy scope makes "@...@" in the values below plain text (CMP0053);
  # cmake_install.cmake itself sets no policies.
  install(CODE "
    cmake_policy(PUSH)
    cmake_policy(VERSION 3.18)
    set(WH_TEMPLATE \"${template}\")
    set(WH_NAME \"${name}\")
    set(WH_DESTINATION \"${destination}\")
    set(WH_REPLACE \"${arg_REPLACE}\")
    set(WH_WITH \"${arg_WITH}\")
    set(WH_BINARY_DIR \"${CMAKE_BINARY_DIR}\")
    set(PROJECT_VERSION \"${PROJECT_VERSION}\")
    set(WH_PC_REQUIRES \"${WH_PC_REQUIRES}\")
    set(PROJECT_DESCRIPTION \"${WH_DESCRIPTION}\")
    set(WH_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
    set(WH_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
    set(WH_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
    include(\"${CMAKE_SOURCE_DIR}/cmake/install_configured.cmake\")
    cmake_policy(POP)
  " COMPONENT ${component})
endfunction()

set(WH_DESCRIPTION "event-driven network server framework: event loop, TCP/UDP, threaded runtime, HTTP/1.1, WebSocket")
wh_install_configured(${CMAKE_SOURCE_DIR}/cmake/wharf.pc.in wharf.pc
                      ${CMAKE_INSTALL_LIBDIR}/pkgconfig Development)

if(TARGET wharfd)
  install(TARGETS wharfd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT Runtime)
  install(FILES ${CMAKE_SOURCE_DIR}/docs/wharfd.8
          DESTINATION ${CMAKE_INSTALL_MANDIR}/man8 COMPONENT Runtime)
  # systemd looks in lib/systemd/system under the prefix, never in a
  # multiarch libdir, so this path is spelled out rather than LIBDIR.
  # deploy/wharfd.service names /usr/local/bin/wharfd (the default prefix, so
  # the file also works copied by hand); point it at the real bindir.
  wh_install_configured(${CMAKE_SOURCE_DIR}/deploy/wharfd.service wharfd.service
                        lib/systemd/system Runtime
                        REPLACE /usr/local/bin/wharfd WITH "@WH_FULL_BINDIR@/wharfd")
  install(FILES ${CMAKE_SOURCE_DIR}/deploy/wharfd.socket DESTINATION lib/systemd/system
          COMPONENT Runtime)
  install(FILES ${CMAKE_SOURCE_DIR}/deploy/wharfd.conf DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples
          COMPONENT Runtime)
endif()

install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT Docs)
# Under docs/ so that README.md's relative links (docs/http.md, ...) still resolve.
file(GLOB WH_DOC_PAGES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/docs/*.md)
install(FILES ${WH_DOC_PAGES} DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs COMPONENT Docs)
# The API reference, when `cmake --build <build> --target docs` made it.
install(DIRECTORY ${CMAKE_BINARY_DIR}/docs/html/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/api
        COMPONENT Docs OPTIONAL)
