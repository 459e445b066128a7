/* main.c - boundopt: run a job file under MPI.
 *
 *   mpirun -n P bin/boundopt JOB.yaml [-option value ...]
 *
 * The job file is checked (it exists, it is YAML, its top level is a mapping) on rank 0 before
 * PETSc starts, so a malformed file gets one line instead of PETSc's stack.  It is then handed to
 * PetscInitialize as "-options_file_yaml JOB.yaml" right after argv[0]: nested keys become
 * prefixed options (cluster: {k: 10} is -cluster_k 10), PETSc's own options such as log_view work
 * from the file, and options later on the command line override it.
 */
#include "boundopt/error.h"
#include "boundopt/h5.h"
#include "boundopt/version.h"
#include "boundopt/job.h"
#include "boundopt/signals.h"
#include "boundopt/tasks.h"
#include <errno.h>
#include <string.h>
#include <yaml.h>


void openblas_set_num_threads(int); /* OpenBLAS's own API; not in the reference cblas.h */

static const char help[] = "boundopt: bound optimization and information-theoretic inference on MPI.\n"
                           "Usage: mpirun -n P boundopt JOB.yaml [-option value ...]; -help with a task lists its options.\n";

static void print_version(void)
{
  unsigned maj, min, rel;
  H5get_libversion(&maj, &min, &rel);
  printf("boundopt %s (git %s), PETSc %d.%d.%d, HDF5 %u.%u.%u, MPI %d.%d\n", bo_version(), bo_git_revision(), PETSC_VERSION_MAJOR, PETSC_VERSION_MINOR, PETSC_VERSION_SUBMINOR, maj, min, rel, MPI_VERSION, MPI_SUBVERSION);
}

/* One line about what is wrong with the job file, or "" when PETSc can read it. */
static void check_job_file(const char *path, char *msg, size_t len)
{
  FILE         *f = fopen(path, "rb");
  yaml_parser_t parser;
  yaml_document_t doc;

  msg[0] = 0;
  if (!f) {
    snprintf(msg, len, "%s: cannot open the job file (%s); expected a readable YAML file", path, strerror(errno));
    return;
  }
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_file(&parser, f);
  if (!yaml_parser_load(&parser, &doc)) {
    snprintf(msg, len, "%s:%zu:%zu: %s%s%s; expected a YAML mapping of options (key: value)", path, parser.problem_mark.line + 1, parser.problem_mark.column + 1, parser.problem ? parser.problem : "malformed YAML", parser.context ? " " : "", parser.context ? parser.context : "");
  } else {
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && root->type != YAML_MAPPING_NODE)
      snprintf(msg, len, "%s:%zu: the top level is not a mapping; expected a YAML mapping of options (key: value)", path, root->start_mark.line + 1);
    yaml_document_delete(&doc);
  }
  yaml_parser_delete(&parser);
  fclose(f);
}

static PetscErrorCode run(int *status)
{
  bo_job            job;
  PetscFunctionList list = NULL;
  bo_task_fn        task = NULL;
  char              names[256];

  PetscFunctionBeginUser;
  PetscCall(bo_job_create(PETSC_COMM_WORLD, &job));
  PetscCall(bo_tasks_register(&list));
  PetscCall(bo_tasks_names(list, names, sizeof names));
  if (!job.task[0] && job.help) {
    PetscCall(PetscPrintf(job.comm, "boundopt tasks: %s.  Give -task NAME -help for the options of one.\n", names));
    PetscCall(PetscFunctionListDestroy(&list));
    PetscFunctionReturn(0);
  }
  PetscCheck(job.task[0], job.comm, BO_ERR_INPUT, "option -task: missing; expected task: NAME in the job file (one of %s)", names);
  PetscCall(PetscFunctionListFind(list, job.task, &task));
  PetscCheck(task, job.comm, BO_ERR_INPUT, "option -task: '%s' is not a task; expected one of %s", job.task, names);
  PetscCall(PetscFunctionListDestroy(&list));
  PetscCall(task(&job));
  if (!job.setup_done) {
    PetscBool stop;
    PetscCall(bo_job_setup_done(&job, &stop));
  }
  *status = job.exit_status;
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  char         *args[256];
  char        **argp = args;
  int           nargs = 0, first = 1;
  char          msg[1024] = "";
  int           rank;
  PetscErrorCode ierr;
  int            status = BO_EXIT_OK;

  if (argc > 1 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))) {
    print_version();
    return 0;
  }
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  args[nargs++] = argv[0];
  if (argc > 1 && argv[1][0] != '-') { /* a job file */
    if (!rank) check_job_file(argv[1], msg, sizeof msg);
    (void)MPI_Bcast(msg, sizeof msg, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (msg[0]) {
      if (!rank) fprintf(stderr, "boundopt: %s\n", msg);
      MPI_Finalize();
      return BO_EXIT_INPUT;
    }
    args[nargs++] = (char *)"-options_file_yaml";
    args[nargs++] = argv[1];
    first         = 2;
  }
  for (int i = first; i < argc && nargs < 255; i++) args[nargs++] = argv[i];
  args[nargs] = NULL;

  ierr = PetscInitialize(&nargs, &argp, NULL, help);
  if (ierr) {
    if (!rank) fprintf(stderr, "boundopt: PETSc: initialisation failed (error %d); expected a valid job file and options\n", (int)ierr);
    MPI_Abort(MPI_COMM_WORLD, BO_EXIT_INPUT);
  }
  ierr = bo_error_push_handler();
  if (!ierr) ierr = bo_h5_init();
  openblas_set_num_threads(1); /* rank-invariant kernels need single-threaded, fixed-shape BLAS */
  if (!ierr) ierr = bo_signals_install();
  if (!ierr) ierr = run(&status);
  if (ierr) bo_error_exit(ierr);
  ierr = PetscFinalize();
  MPI_Finalize();
  return ierr ? BO_EXIT_RUNTIME : status;
}
