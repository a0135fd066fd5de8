/*
 * acctmap: the account-mapping overlap engine. One header for everything
 * public; each module also has its own under acctmap/.
 */
#ifndef ACCTMAP_H
#define ACCTMAP_H

#include "acctmap/error.h"
#include "acctmap/arena.h"
#include "acctmap/parse.h"
#include "acctmap/record.h"
#include "acctmap/config.h"
#include "acctmap/connector.h"
#include "acctmap/normalize.h"
#include "acctmap/keys.h"
#include "acctmap/policy.h"
#include "acctmap/report.h"

#endif
