# Doxygen input filter for include/wharf/*.h. The headers document every
# declaration with plain C comments (/* ... */) in the line(s) above it, and
# fields/enumerators with a comment after them; Doxygen reads only /** and
# /**<. Rewrite them on the way in instead of changing the headers' style.
#
# The comment that opens the file describes the whole header.
1s|^/\*[[:space:]]*|/** @file\n * |
# A comment starting a line documents what follows it...
2,$s|^\([[:space:]]*\)/\*\([^*!]\)|\1/**\2|
# ...one after a field, enumerator or parameter documents what precedes it.
s|\([;,{]\)\([[:space:]]*\)/\*\([^*!<]\)|\1\2/**<\3|
