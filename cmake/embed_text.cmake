# Writes the text file IN as a C string literal (dpl_header_text) into OUT.
file(READ ${IN} text)
string(REPLACE "\\" "\\\\" text "${text}")
string(REPLACE "\"" "\\\"" text "${text}")
string(REPLACE "\n" "\\n\"\n\"" text "${text}")
file(WRITE ${OUT} "/* generated from dpl.h: do not edit */\nstatic const char dpl_header_text[] =\n\"${text}\";\n")
