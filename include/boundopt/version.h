/* version.h - what this build is: the release and the git revision it was built from. */
#ifndef BOUNDOPT_VERSION_H
#define BOUNDOPT_VERSION_H
const char *bo_version(void);
const char *bo_git_revision(void); /* 12 hex digits, "-dirty" when the tree had changes */
#endif
