build/obj/src/error.o: src/error.c include/acctmap/error.h
include/acctmap/error.h:
