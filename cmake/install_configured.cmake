# Runs at install time (from install(CODE) in install.cmake), when
# CMAKE_INSTALL_PREFIX is the prefix actually being installed to.
# In: WH_TEMPLATE, WH_NAME, WH_DESTINATION (relative to the prefix, or
# absolute), WH_REPLACE/WH_WITH (swap one literal for WITH, whose @VAR@s are
# expanded; without them the whole template is expanded),
# WH_BINARY_DIR and the directory variables set by wh_install_configured().
foreach(kind LIBDIR INCLUDEDIR BINDIR)
  if(IS_ABSOLUTE "${WH_${kind}}")
    set(WH_FULL_${kind} "${WH_${kind}}")
  else()
    set(WH_FULL_${kind} "${CMAKE_INSTALL_PREFIX}/${WH_${kind}}")
  endif()
endforeach()
set(WH_PREFIX "${CMAKE_INSTALL_PREFIX}")
if(IS_ABSOLUTE "${WH_DESTINATION}")
  set(dest "${WH_DESTINATION}")
else()
  set(dest "${CMAKE_INSTALL_PREFIX}/${WH_DESTINATION}")
endif()

# A private scratch directory per install: parallel installs of one build
# tree into different prefixes (the install tests do that) must not
# overwrite each other's half-written file.
string(MD5 prefix_hash "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}")
string(RANDOM LENGTH 8 nonce)
set(scratch "${WH_BINARY_DIR}/install-scratch/${prefix_hash}-${nonce}")
file(READ "${WH_TEMPLATE}" text)
if(WH_REPLACE)
  # Only the replacement is expanded: the rest of such a file is used as is
  # (a systemd unit has '@' of its own, e.g. SystemCallFilter=@system-service).
  string(CONFIGURE "${WH_WITH}" with @ONLY)
  string(REPLACE "${WH_REPLACE}" "${with}" text "${text}")
else()
  string(CONFIGURE "${text}" text @ONLY)
endif()
file(WRITE "${scratch}/${WH_NAME}" "${text}")
# file(INSTALL) adds DESTDIR and records the file in install_manifest.txt.
file(INSTALL DESTINATION "${dest}" TYPE FILE FILES "${scratch}/${WH_NAME}")
file(REMOVE_RECURSE "${scratch}")
