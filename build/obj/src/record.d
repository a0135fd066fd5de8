build/obj/src/record.o: src/record.c include/acctmap/record.h \
 include/acctmap/arena.h include/acctmap/error.h
include/acctmap/record.h:
include/acctmap/arena.h:
include/acctmap/error.h:
