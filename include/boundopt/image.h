/* image.h - images for the image tasks: read a PNG or an HDF5 /image, write PNG copies atomically.
 *
 * Contract
 *   bo_image_read (collective): every rank of comm gets the whole image as a bo_image
 *   (importers.h: h x w x c doubles in [0,1], c = 1 grey or 3 RGB, bit_depth 8 or 16).
 *     - PNG (8/16-bit grey or RGB, and whatever libpng turns into those): rank 0 decodes, then
 *       broadcasts;
 *     - HDF5: the float dataset /image, H x W or H x W x C with C 1 or 3 (as written by the import
 *       task), read on every rank; its bit_depth attribute (8 if absent) sets the PNG copies' depth.
 *   Anything else, a missing file or a non-finite sample is an input error naming the file.
 *   Images are replicated: the image tasks scatter them onto a DMDA (imgop.h); an image of
 *   4096 x 4096 x 3 costs 400 MB per rank.
 *   bo_image_png_stage writes rank 0's image to a temporary file next to path (registered with
 *   the error handler, so a failed job leaves nothing); bo_image_png_publish renames it into
 *   place.  Stage before the results file is committed, publish after: readers never see a
 *   partial PNG.  Both collective (errors on rank 0 are raised on every rank).
 *   bo_image_sibling_path: "out.h5" + "u" -> "out-u.png" (the extension .h5/.hdf5 dropped).
 */
#ifndef BOUNDOPT_IMAGE_H
#define BOUNDOPT_IMAGE_H
#include "boundopt/importers.h"

PetscErrorCode bo_image_read(MPI_Comm comm, const char *path, bo_image *img);

typedef struct {
  char path[PETSC_MAX_PATH_LEN];
  char tmp[PETSC_MAX_PATH_LEN];
} bo_png_staged;

PetscErrorCode bo_image_png_stage(MPI_Comm comm, const char *path, const bo_image *img, int bit_depth, bo_png_staged *s);
PetscErrorCode bo_image_png_publish(MPI_Comm comm, bo_png_staged *s);
void           bo_image_sibling_path(const char *results, const char *name, char *out, size_t len);
#endif
