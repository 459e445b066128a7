/* registry.c - task name -> function (see tasks.h). */
#include "boundopt/tasks.h"
#include <string.h>

static const struct {
  const char *name;
  bo_task_fn  fn;
} tasks[] = {
  {"adapt",      bo_task_adapt},
  {"cluster",    bo_task_cluster},
  {"extract",    bo_task_extract},
  {"fcam",       bo_task_fcam},
  {"fewshot",    bo_task_fewshot},
  {"fewshot-seg", bo_task_fewshot_seg},
  {"fire-gauss", bo_task_fire_gauss},
  {"import",     bo_task_import},
  {"info",       bo_task_info},
  {"knn",        bo_task_knn},
  {"merge",      bo_task_merge},
  {"mixed",      bo_task_mixed},
  {"preprocess", bo_task_preprocess},
  {"restore",    bo_task_restore},
  {"scenes",     bo_task_scenes},
  {"segment",    bo_task_segment},
  {"train",      bo_task_train},
  {"train-seg",  bo_task_train_seg},
};

PetscErrorCode bo_tasks_register(PetscFunctionList *list)
{
  PetscFunctionBeginUser;
  for (size_t i = 0; i < sizeof tasks / sizeof tasks[0]; i++) PetscCall(PetscFunctionListAdd(list, tasks[i].name, tasks[i].fn));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_tasks_names(PetscFunctionList list, char *buf, size_t len)
{
  PetscFunctionBeginUser;
  buf[0] = 0;
  for (size_t i = 0; i < sizeof tasks / sizeof tasks[0]; i++) {
    if (i) strncat(buf, ", ", len - strlen(buf) - 1);
    strncat(buf, tasks[i].name, len - strlen(buf) - 1);
  }
  PetscFunctionReturn(0);
}
