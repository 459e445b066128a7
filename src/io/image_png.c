/* image_png.c - PNG to and from [0,1] doubles through libpng.
 *
 * libpng reports errors by longjmp.  Each libpng phase therefore runs in a small function that
 * calls setjmp itself and returns 1 on failure, with no PETSc calls (and nothing to free) inside
 * it; the PETSc side allocates before, frees after and raises the stored message. */
#include <boundopt/importers.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  const char *path;
  FILE       *fp;
  png_structp png;
  png_infop   info;
  jmp_buf     jump;
  char        message[200]; /* libpng's error text, for our one-line message */
} pngio_session;

/* Image shape as libpng delivers the rows after our transforms. */
typedef struct {
  png_uint_32 w, h;
  int         c, bit_depth;
  size_t      rowbytes;
} pngio_layout;

static void pngio_on_error(png_structp png, png_const_charp msg)
{
  pngio_session *s = (pngio_session *)png_get_error_ptr(png);

  snprintf(s->message, sizeof s->message, "%s", msg);
  longjmp(s->jump, 1);
}

/* Warnings (say, a damaged ancillary chunk) do not affect the pixels: stay quiet. */
static void pngio_on_warning(png_structp png, png_const_charp msg)
{
  (void)png;
  (void)msg;
}

/* ---- reading ----------------------------------------------------------------------------- */

static PetscErrorCode pngio_open_for_read(pngio_session *s)
{
  unsigned char sig[8];
  size_t        got;

  PetscFunctionBegin;
  errno = 0;
  s->fp = fopen(s->path, "rb");
  PetscCheck(s->fp, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s: cannot open (%s); expected a readable file", s->path,
             strerror(errno));
  got = fread(sig, 1, sizeof sig, s->fp);
  PetscCheck(!ferror(s->fp), PETSC_COMM_SELF, PETSC_ERR_FILE_READ, "%s: cannot read (%s); expected a readable file", s->path,
             strerror(errno));
  PetscCheck(got == sizeof sig && !png_sig_cmp(sig, 0, sizeof sig), PETSC_COMM_SELF, PETSC_ERR_USER_INPUT,
             "%s: not a PNG file (bad signature); expected a PNG image", s->path);
  s->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, s, pngio_on_error, pngio_on_warning);
  PetscCheck(s->png, PETSC_COMM_SELF, PETSC_ERR_MEM, "%s: libpng could not start (out of memory); expected free memory", s->path);
  s->info = png_create_info_struct(s->png);
  PetscCheck(s->info, PETSC_COMM_SELF, PETSC_ERR_MEM, "%s: libpng could not start (out of memory); expected free memory", s->path);
  png_init_io(s->png, s->fp);
  png_set_sig_bytes(s->png, sizeof sig);
  PetscFunctionReturn(0);
}

/* Asks libpng for 8/16-bit grey or RGB rows whatever the file holds. */
static int pngio_read_layout(pngio_session *s, pngio_layout *L)
{
  int color, depth;

  if (setjmp(s->jump)) return 1;
  png_read_info(s->png, s->info);
  color = png_get_color_type(s->png, s->info);
  depth = png_get_bit_depth(s->png, s->info);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(s->png); /* also turns tRNS into alpha... */
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(s->png);
  png_set_strip_alpha(s->png); /* ...which is stripped here with any real alpha channel */
  png_set_interlace_handling(s->png);
  png_read_update_info(s->png, s->info);
  L->w         = png_get_image_width(s->png, s->info);
  L->h         = png_get_image_height(s->png, s->info);
  L->c         = png_get_channels(s->png, s->info);
  L->bit_depth = png_get_bit_depth(s->png, s->info);
  L->rowbytes  = png_get_rowbytes(s->png, s->info);
  return 0;
}

static int pngio_read_rows(pngio_session *s, png_bytep *rows)
{
  if (setjmp(s->jump)) return 1;
  png_read_image(s->png, rows);
  png_read_end(s->png, NULL);
  return 0;
}

static void pngio_rows_to_doubles(const pngio_layout *L, png_bytep *rows, double *data)
{
  size_t per_row = (size_t)L->w * (size_t)L->c;

  for (png_uint_32 y = 0; y < L->h; y++) {
    const png_byte *b   = rows[y];
    double         *out = data + (size_t)y * per_row;

    if (L->bit_depth == 16)
      for (size_t k = 0; k < per_row; k++) out[k] = (double)(b[2 * k] << 8 | b[2 * k + 1]) / 65535.0;
    else
      for (size_t k = 0; k < per_row; k++) out[k] = (double)b[k] / 255.0;
  }
}

/* Decodes the whole image into one buffer: interlaced files need every row at once. */
static PetscErrorCode pngio_decode(pngio_session *s, const pngio_layout *L, bo_image *img)
{
  png_bytep *rows;
  png_byte  *raw;
  int        failed;

  PetscFunctionBegin;
  PetscCall(PetscMalloc1((size_t)L->h * L->rowbytes, &raw));
  PetscCall(PetscMalloc1(L->h, &rows));
  for (png_uint_32 y = 0; y < L->h; y++) rows[y] = raw + (size_t)y * L->rowbytes;
  failed = pngio_read_rows(s, rows);
  if (!failed) pngio_rows_to_doubles(L, rows, img->data);
  PetscCall(PetscFree(rows));
  PetscCall(PetscFree(raw));
  PetscCheck(!failed, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "%s: corrupt PNG (%s); expected a valid PNG image", s->path, s->message);
  PetscFunctionReturn(0);
}

static PetscErrorCode pngio_read_session(pngio_session *s, bo_image *img)
{
  pngio_layout L;

  PetscFunctionBegin;
  PetscCall(pngio_open_for_read(s));
  PetscCheck(!pngio_read_layout(s, &L), PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "%s: corrupt PNG (%s); expected a valid PNG image",
             s->path, s->message);
  PetscCheck((L.c == 1 || L.c == 3) && (L.bit_depth == 8 || L.bit_depth == 16), PETSC_COMM_SELF, PETSC_ERR_USER_INPUT,
             "%s: decodes to %d channels of %d bits; expected grey or RGB of 8 or 16 bits", s->path, L.c, L.bit_depth);
  img->h         = L.h;
  img->w         = L.w;
  img->c         = L.c;
  img->bit_depth = L.bit_depth;
  PetscCall(PetscMalloc1((size_t)L.h * L.w * (size_t)L.c, &img->data));
  PetscCall(pngio_decode(s, &L, img));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_png_read(const char *path, bo_image *img)
{
  pngio_session  s = {.path = path};
  PetscErrorCode ierr;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(img, sizeof *img));
  ierr = pngio_read_session(&s, img);
  if (s.png) png_destroy_read_struct(&s.png, s.info ? &s.info : NULL, NULL);
  if (s.fp) fclose(s.fp);
  if (ierr) PetscCall(bo_image_destroy(img));
  PetscCall(ierr);
  PetscFunctionReturn(0);
}

/* ---- writing ----------------------------------------------------------------------------- */

/* Clamps to [0,1] (NaN fails both tests and becomes 0) and rounds to a level of 0..max. */
static unsigned pngio_quantize(double v, unsigned max)
{
  if (!(v > 0)) return 0;
  if (v >= 1) return max;
  return (unsigned)floor(v * max + 0.5);
}

static void pngio_pack_row(const bo_image *img, int bit_depth, int64_t y, png_byte *row)
{
  size_t        per_row = (size_t)img->w * (size_t)img->c;
  const double *in      = img->data + (size_t)y * per_row;

  if (bit_depth == 16)
    for (size_t k = 0; k < per_row; k++) {
      unsigned q     = pngio_quantize(in[k], 65535);
      row[2 * k]     = (png_byte)(q >> 8); /* PNG samples are big-endian */
      row[2 * k + 1] = (png_byte)(q & 0xff);
    }
  else
    for (size_t k = 0; k < per_row; k++) row[k] = (png_byte)pngio_quantize(in[k], 255);
}

/* One row buffer: the file is written as it is packed. */
static int pngio_write_rows(pngio_session *s, const bo_image *img, int bit_depth, png_byte *row)
{
  if (setjmp(s->jump)) return 1;
  png_init_io(s->png, s->fp);
  png_set_IHDR(s->png, s->info, (png_uint_32)img->w, (png_uint_32)img->h, bit_depth,
               img->c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(s->png, s->info);
  for (int64_t y = 0; y < img->h; y++) {
    pngio_pack_row(img, bit_depth, y, row);
    png_write_row(s->png, row);
  }
  png_write_end(s->png, NULL);
  return 0;
}

static PetscErrorCode pngio_check_writable(const char *path, const bo_image *img, int bit_depth)
{
  PetscFunctionBegin;
  PetscCheck(bit_depth == 8 || bit_depth == 16, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE,
             "%s: bit depth %d requested; expected 8 or 16", path, bit_depth);
  PetscCheck(img->c == 1 || img->c == 3, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE,
             "%s: image of %d channels; expected 1 (grey) or 3 (RGB)", path, img->c);
  PetscCheck(img->h >= 1 && img->w >= 1 && img->h <= PNG_UINT_31_MAX && img->w <= PNG_UINT_31_MAX && img->data, PETSC_COMM_SELF,
             PETSC_ERR_ARG_OUTOFRANGE, "%s: image of %" PRId64 "x%" PRId64 " pixels; expected 1 to 2^31-1 pixels a side with data",
             path, img->h, img->w);
  PetscFunctionReturn(0);
}

static PetscErrorCode pngio_write_session(pngio_session *s, const bo_image *img, int bit_depth)
{
  png_byte *row;
  int       failed;

  PetscFunctionBegin;
  s->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, s, pngio_on_error, pngio_on_warning);
  PetscCheck(s->png, PETSC_COMM_SELF, PETSC_ERR_MEM, "%s: libpng could not start (out of memory); expected free memory", s->path);
  s->info = png_create_info_struct(s->png);
  PetscCheck(s->info, PETSC_COMM_SELF, PETSC_ERR_MEM, "%s: libpng could not start (out of memory); expected free memory", s->path);
  PetscCall(PetscMalloc1((size_t)img->w * (size_t)img->c * (size_t)(bit_depth / 8), &row));
  failed = pngio_write_rows(s, img, bit_depth, row);
  PetscCall(PetscFree(row));
  PetscCheck(!failed, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "%s: cannot write PNG (%s); expected a writable file", s->path,
             s->message);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_png_write(const char *path, const bo_image *img, int bit_depth)
{
  pngio_session  s = {.path = path};
  PetscErrorCode ierr;
  int            close_failed, close_errno;

  PetscFunctionBegin;
  PetscCall(pngio_check_writable(path, img, bit_depth));
  errno = 0;
  s.fp  = fopen(path, "wb");
  PetscCheck(s.fp, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s: cannot open for writing (%s); expected a writable path", path,
             strerror(errno));
  ierr = pngio_write_session(&s, img, bit_depth);
  if (s.png) png_destroy_write_struct(&s.png, s.info ? &s.info : NULL);
  close_failed = fclose(s.fp); /* a full disk may only show here, when the buffer is flushed */
  close_errno  = errno;
  if (ierr || close_failed) remove(path);
  PetscCall(ierr);
  PetscCheck(!close_failed, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "%s: cannot write (%s); expected a writable file", path,
             strerror(close_errno));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_image_destroy(bo_image *img)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(img->data));
  PetscCall(PetscMemzero(img, sizeof *img));
  PetscFunctionReturn(0);
}
