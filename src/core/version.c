/* version.c - the only file compiled with the git revision, rebuilt whenever it changes
 * (Makefile: $(BUILD)/git_rev), so every binary reports the revision it was built from. */
#include "boundopt/version.h"

#ifndef BO_VERSION
  #define BO_VERSION "unknown"
#endif
#ifndef BO_GIT_REV
  #define BO_GIT_REV "unknown"
#endif

const char *bo_version(void) { return BO_VERSION; }
const char *bo_git_revision(void) { return BO_GIT_REV; }
