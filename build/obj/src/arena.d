build/obj/src/arena.o: src/arena.c include/acctmap/arena.h
include/acctmap/arena.h:
