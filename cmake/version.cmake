# project(VERSION) is the one source of the version for everything CMake
# generates (SONAME, wharf.pc, the CMake package, the Doxygen project number).
# include/wharf/common.h spells it out too, because an installed header cannot
# depend on this build; refuse to configure when the two disagree, so a bump
# in one place cannot ship a library whose wh_version() contradicts its SONAME.
file(STRINGS ${CMAKE_SOURCE_DIR}/include/wharf/common.h wh_version_line
     REGEX "^#define[ \t]+WH_VERSION[ \t]+\"")
string(REGEX REPLACE ".*\"([^\"]*)\".*" "\\1" wh_header_version "${wh_version_line}")
if(NOT wh_header_version STREQUAL PROJECT_VERSION)
  message(FATAL_ERROR "include/wharf/common.h says WH_VERSION \"${wh_header_version}\" "
                      "but CMakeLists.txt says project(VERSION ${PROJECT_VERSION}); "
                      "make them agree")
endif()
# The man page carries the version in its .TH footer; a stale one is only
# cosmetic, so warn.
file(STRINGS ${CMAKE_SOURCE_DIR}/docs/wharfd.8 wh_th_line REGEX "^\\.TH ")
if(wh_th_line AND NOT wh_th_line MATCHES "wharf ${PROJECT_VERSION}\"")
  message(WARNING "docs/wharfd.8: .TH line does not name wharf ${PROJECT_VERSION}")
endif()
