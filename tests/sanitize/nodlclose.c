/* nodlclose.c - LD_PRELOAD shim for `make asan`: dlclose does nothing.
 *
 * Open MPI loads its components with dlopen and unloads them before exit; LeakSanitizer reports
 * afterwards, so their allocations show as "<unknown module>" and no suppression can name them.
 * Keeping every library loaded lets tests/lsan.supp suppress them by library name.
 */
int dlclose(void *handle);
int dlclose(void *handle)
{
  (void)handle;
  return 0;
}
