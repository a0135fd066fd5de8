/*
 * CLI: the acctmap command. The only module that reads argv, prints, and
 * chooses the exit code.
 */
#ifndef AM_CLI_H
#define AM_CLI_H

/* Run the command line; returns the exit code (0 ok, 1 runtime failure, 2 usage or config). */
int am_cli_main(int argc, char **argv);

#endif
