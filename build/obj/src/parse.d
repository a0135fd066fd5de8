build/obj/src/parse.o: src/parse.c include/acctmap/parse.h \
 include/acctmap/error.h
include/acctmap/parse.h:
include/acctmap/error.h:
