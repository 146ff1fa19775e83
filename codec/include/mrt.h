/*
 * mrt.h -- the public API of libmrt: extreme-compression image codec (MRT).
 *
 * One header for everything a program needs: load a model, encode RGB8
 * pixels to a few hundred bytes, decode them back, read a bitstream's
 * header, and read/write PNG and JPEG.
 *
 * Conventions
 *   - Every call that can fail returns an mrt_status and, when `err` is not
 *     NULL, fills it with a one-line, human-readable reason.
 *   - Memory handed to the caller (images, byte buffers) is freed with
 *     mrt_image_free / mrt_free.
 *   - A loaded model is read-only: any number of threads may encode and
 *     decode with one model at the same time.
 *   - `threads` arguments: 0 means "default" (MRT_THREADS, else all cores).
 */
#ifndef MRT_H
#define MRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MRT_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------ runtime */

/* The thread count `threads` = 0 stands for: MRT_THREADS from the
 * environment if it is a positive integer, otherwise the number of cores. */
int mrt_default_threads(void);
/* The GEMM library underneath: BLIS's kernel family picked at run time
 * (e.g. "skx", "zen3") and its version, for reports. */
const char *mrt_blis_arch(void);
const char *mrt_blis_version(void);

/* ------------------------------------------------------------- errors */

typedef enum mrt_status {
    MRT_OK = 0,
    MRT_ERR_ARGUMENT,       /* a NULL pointer, a zero size, an unknown option */
    MRT_ERR_NOMEM,          /* out of memory */
    MRT_ERR_IO,             /* a file could not be read or written */
    MRT_ERR_IMAGE,          /* not a PNG/JPEG, or a corrupt or unsupported one */
    MRT_ERR_TOO_BIG,        /* over MRT_MAX_PIXELS (or a side over MRT_MAX_SIDE) */
    MRT_ERR_CORRUPT,        /* a bitstream that is truncated, damaged or not ours */
    MRT_ERR_VERSION,        /* a bitstream of a version this library cannot read */
    MRT_ERR_MODEL,          /* a weights file that is invalid or inconsistent */
    MRT_ERR_MODEL_MISMATCH, /* a bitstream made with another model */
} mrt_status;

/* Short stable name of a status ("MRT_ERR_CORRUPT"). */
const char *mrt_status_name(mrt_status status);

/* `message` is one NUL-terminated line without a trailing newline, cut to
 * fit. The image calls also reset it (MRT_OK, "") when they succeed. */
typedef struct mrt_error {
    mrt_status status;
    char message[512];
} mrt_error;

/* Frees memory returned by libmrt (encoded bytes, PNG bytes). NULL is fine. */
void mrt_free(void *p);

/* -------------------------------------------------------------- files */

/* The largest file the library's readers accept (mrt_image_read_file, and
 * the `mrt` command for bitstreams). The biggest legitimate input is an
 * uncompressed (stored) 16-bit RGBA PNG at MRT_MAX_PIXELS: 512 MiB plus a
 * little. */
#define MRT_MAX_FILE_BYTES ((size_t)1 << 30)

/* Reads a whole file into *out (malloc'd, free with mrt_free) and *len.
 *   - A regular file larger than max_bytes is refused from its size before
 *     anything is allocated (MRT_ERR_TOO_BIG, naming both sizes). The file
 *     is still read to its end, not to its stated size, so one that grows
 *     meanwhile is caught too.
 *   - A pipe, socket or device has no size: it is read in growing chunks
 *     and refused (MRT_ERR_TOO_BIG) as soon as it passes max_bytes.
 *   - A directory, or an open/stat/read failure, is MRT_ERR_IO; no memory
 *     is MRT_ERR_NOMEM. Messages start with the path and name the step:
 *     "photo.png: cannot open: No such file or directory".
 * An empty file gives *len 0 and a non-NULL *out. On failure *out is NULL
 * and *len 0. */
mrt_status mrt_read_file(const char *path, size_t max_bytes, uint8_t **out, size_t *len,
                         mrt_error *err);
/* The same from a descriptor the caller opened (it stays open; it is read
 * from its current offset). Messages start with "name: ", or with nothing
 * when name is NULL. */
mrt_status mrt_read_fd(int fd, const char *name, size_t max_bytes, uint8_t **out, size_t *len,
                       mrt_error *err);

/* Writes `len` bytes to `path` so that `path` is never seen half-written:
 * into a new temporary file beside it ("PATH.tmp-PID-XXXXXXXX", created
 * exclusively; of a file name over 200 bytes the first 200), which is
 * fsync'ed and then renamed over `path`; the directory is then fsync'ed
 * (best effort: some file systems refuse). A crash leaves the old file or
 * the whole new one, and at worst a stray temporary file. The new file's
 * mode is 0666 less the umask, as for any new file.
 * What is at `path` is never replaced by something else:
 *   - a character device or FIFO (/dev/null, a named pipe, /dev/stdout)
 *     is written into directly; a FIFO that no process reads is an error,
 *     not a wait;
 *   - a symbolic link is followed: its target is what is replaced (the
 *     temporary file goes beside the target) or written into; a link to
 *     nothing is refused;
 *   - a directory, block device or socket is refused.
 * Failures are MRT_ERR_IO naming the path, the step and the reason; the
 * temporary file is then removed. */
mrt_status mrt_write_file_atomic(const char *path, const void *data, size_t len, mrt_error *err);
/* The same with `path` relative to the directory `dirfd` (openat(2) rules;
 * the temporary file and the rename stay in that directory), except that a
 * symbolic link at `path` is refused, not followed: with a directory fd
 * opened without following links, the write stays inside that tree. */
mrt_status mrt_write_file_atomic_at(int dirfd, const char *path, const void *data, size_t len,
                                    mrt_error *err);
/* Writes all `len` bytes to an open descriptor (standard output for a
 * "-" argument); failures are MRT_ERR_IO starting "name: " ("output" when
 * name is NULL). */
mrt_status mrt_write_fd(int fd, const char *name, const void *data, size_t len, mrt_error *err);
/* The two halves of mrt_write_file_atomic, for writers that need a file
 * name rather than bytes (SQLite, libarchive). _create makes the empty
 * temporary file beside `path` (beside a symbolic link's target; in
 * $TMPDIR, else /tmp, for a device or FIFO) and returns its name in
 * *tmp_path (free with mrt_free). _commit fsyncs it and moves it to
 * `path`: with `replace` by rename, else by link(2), which never
 * overwrites an existing `path` (MRT_ERR_IO, "exists already"); then
 * fsyncs the directory. A device or FIFO at `path` gets the file's bytes
 * written into it instead. The rules for `path` are those of
 * mrt_write_file_atomic. The temporary name is removed whether _commit
 * succeeds or not. */
mrt_status mrt_temp_file_create(const char *path, char **tmp_path, mrt_error *err);
mrt_status mrt_temp_file_commit(const char *tmp_path, const char *path, int replace,
                                mrt_error *err);

/* ------------------------------------------------------------- images */

/* Pixel limits, checked before any pixel memory is allocated: 8192 x 8192
 * pixels in all, and no side longer than 65535. */
#define MRT_MAX_PIXELS (8192LL * 8192LL)
#define MRT_MAX_SIDE 65535

/* 8-bit RGB, rows top to bottom, 3 bytes per pixel, no padding. */
typedef struct mrt_image {
    int width, height;
    uint8_t *rgb;
} mrt_image;

/* Reads a PNG or JPEG (recognised by its signature, not its name).
 * *out is overwritten (not freed); on failure it is {0, 0, NULL}.
 *   - Size: checked from the header against the limits above before any
 *     pixel memory is allocated (MRT_ERR_TOO_BIG, naming the size).
 *   - PNG, every colour type and bit depth, interlaced or not: gray and
 *     palette become RGB; 16-bit samples are rounded, round(v*255/65535);
 *     transparency (alpha channel or tRNS) is composited onto white, on the
 *     stored values (the codec stores no transparency): for 8 bits
 *     out = (c*a + 255*(255-a) + 127) / 255, for 16 bits the same in
 *     16-bit units, rounded once. gAMA/iCCP/eXIf and the like are ignored.
 *   - JPEG: gray, YCbCr, RGB; CMYK and YCCK are converted without a colour
 *     profile (Adobe's inverted CMYK recognised). The EXIF orientation is
 *     applied: the image comes out as viewers show it (orientations 5-8
 *     swap width and height).
 *   - Damage is MRT_ERR_IMAGE, never a partly grey picture: a file cut
 *     anywhere ("data ended early"), any PNG CRC or zlib error, any JPEG
 *     corruption libjpeg notices, a progressive JPEG of over 500 scans.
 *     Bytes after the PNG IEND / JPEG EOI are ignored.
 *   - len == 0 is MRT_ERR_IMAGE ("empty input"), data may then be NULL.
 * The file version reads with mrt_read_file, at most MRT_MAX_FILE_BYTES
 * (1 GiB; MRT_ERR_TOO_BIG), reports open and read failures as MRT_ERR_IO,
 * and starts every message with the path. */
mrt_status mrt_image_read_file(const char *path, mrt_image *out, mrt_error *err);
mrt_status mrt_image_read_memory(const void *data, size_t len, mrt_image *out, mrt_error *err);
/* Writes an 8-bit RGB PNG (not interlaced; Paeth filter and zlib's Z_RLE, fast and
 * compact for decoded photos: image.c).
 * An image with rgb NULL or a size outside the limits is MRT_ERR_ARGUMENT.
 * The file version writes a temporary file beside `path` and, once it is
 * complete and fsync'ed, renames it over `path`: `path` is never left
 * half-written. The memory version's *out (free with mrt_free) and
 * *out_len are NULL and 0 on failure. */
mrt_status mrt_image_write_png_file(const mrt_image *img, const char *path, mrt_error *err);
mrt_status mrt_image_write_png_memory(const mrt_image *img, uint8_t **out, size_t *out_len,
                                      mrt_error *err);
/* Frees img->rgb and zeroes *img. NULL, or an image freed already, is fine. */
void mrt_image_free(mrt_image *img);

/* Resizes to w_out x h_out with a separable Lanczos-3 filter in float (the
 * kernel stretched when shrinking, pixel centres aligned, edges repeated,
 * weights normalised; on the 8-bit sRGB values, clamped). The encoder's
 * downscale to its working size, and the benchmark's resampler. The same
 * bytes for any thread count (0: the default). *out is overwritten; on
 * failure {0, 0, NULL}. */
mrt_status mrt_image_resize(const mrt_image *in, int w_out, int h_out, int threads,
                            mrt_image *out, mrt_error *err);
/* The decoder's upscale from the working size to the original size
 * (bitstream version 2, codec/BITSTREAM.md §7): integer Lanczos-3 at 64
 * phases, the same bytes on every machine and for any thread count.
 * w_out and h_out must be at least the input's (MRT_ERR_ARGUMENT). */
mrt_status mrt_image_upscale(const mrt_image *in, int w_out, int h_out, int threads,
                             mrt_image *out, mrt_error *err);

/* Quality of `test` against `reference` (same size, else
 * MRT_ERR_ARGUMENT naming both sizes): PSNR over all RGB values in dB
 * (100 when identical), and MS-SSIM on RGB in [0, 1] (the loss's own
 * definition, codec/runtime/runtime.h). Either output pointer may be NULL. */
mrt_status mrt_image_compare(const mrt_image *reference, const mrt_image *test, int threads,
                             double *psnr, double *msssim, mrt_error *err);

/* ------------------------------------------------------------- models */

typedef struct mrt_model mrt_model;

/* Loads a weights file (the GGUF subset of codec/io/gguf.h), checking
 * every tensor's presence, type and shape against the configuration in its
 * metadata. The file is mapped read-only and shared by all calls. */
mrt_status mrt_model_load(const char *path, mrt_model **out, mrt_error *err);
void mrt_model_free(mrt_model *model);
/* SHA-256 of the weights file (32 bytes): the model's identity. Bitstreams
 * carry its first MRT_FINGERPRINT_BYTES bytes. */
const uint8_t *mrt_model_fingerprint(const mrt_model *model);
#define MRT_FINGERPRINT_BYTES 8
/* A fingerprint as text: 16 lower-case hex digits and a NUL, as bitstream
 * headers, `mrt info`, the SQL functions and archives show it. */
#define MRT_FINGERPRINT_HEX (2 * MRT_FINGERPRINT_BYTES + 1)
void mrt_fingerprint_hex(const uint8_t *fingerprint, char out[MRT_FINGERPRINT_HEX]);
/* The rate points shipped side by side: the paths of every "mrt-*.gguf" in
 * `dir` but the thumbnail heads ("mrt-*.thumbs.gguf"), in name order (*paths is a malloc'd array of *count malloc'd
 * strings; free with mrt_rate_point_files_free). A directory that cannot
 * be listed is MRT_ERR_IO naming it; none found is *count = 0. */
mrt_status mrt_rate_point_files(const char *dir, char ***paths, int *count, mrt_error *err);
void mrt_rate_point_files_free(char **paths, int count);
/* The rate point this model was trained for (written into bitstreams). */
int mrt_model_rate_id(const mrt_model *model);
/* The share of each side of an image the model codes when the encoder is
 * not given a working size: 1 for weights trained for their own rate point;
 * below 1 for a rate point made of another rate point's weights
 * (mrt_rate_point_write), which codes a copy shrunk by that factor (each
 * side rounded, at least 1 pixel; mrt_working_size) and lets the decoder
 * scale it back (bitstream version 2). At these rates, fewer pixels coded
 * by stronger weights beat more pixels coded by weaker ones, as a
 * downscaled WebP beats a full-size one (models/README.md, "Rate points
 * from one model"). */
double mrt_model_working_scale(const mrt_model *model);
/* The smallest working scale a model file may carry (1/16, the budget
 * search's smallest too). */
#define MRT_MIN_WORKING_SCALE 0.0625f
/* A width x height image shrunk by `scale` (0 < scale <= 1): (round(width *
 * scale), round(height * scale)), at least 1 x 1; `mrt encode --scale`'s
 * working size. */
void mrt_scaled_size(int width, int height, double scale, int *scaled_width, int *scaled_height);
/* The working size mrt_encode uses for a width x height image with this
 * model: mrt_scaled_size by mrt_model_working_scale (the image's own size
 * when that is 1). */
void mrt_working_size(const mrt_model *model, int width, int height, int *working_width,
                      int *working_height);
/* Writes a rate point made of existing weights: the weights file at
 * `weights_path` (its tensors and training metadata, byte for byte) with
 * rate id `rate_id` (0..255) and working scale `working_scale`
 * (MRT_MIN_WORKING_SCALE..1), as `out_path` (atomically). It is a model
 * file like any other, with its own fingerprint; rate points are replaced
 * as models are (models/README.md, "Retired weights"), and must be written
 * again whenever the weights they come from are. */
mrt_status mrt_rate_point_write(const char *weights_path, int rate_id, double working_scale,
                                const char *out_path, mrt_error *err);
const char *mrt_model_path(const mrt_model *model);

/* ------------------------------------------------------------ model sets
 *
 * A model set is a model and the rate points shipped beside it: every
 * mrt-NAME.gguf in the model's folder (models/: mrt-0.005.gguf,
 * mrt-0.01.gguf, mrt-0.02.gguf beside default.gguf). The `mrt` command, the
 * SQL extension and mrtarchive all find models through it. Every weights
 * file is loaded once per process and shared by all sets and threads that
 * use it (a file is known by device, inode, size and modification time, so
 * one replaced under the same name is loaded afresh), and freed with the
 * last set holding it. A set is thread-safe; the folder is read on the first
 * call that needs the rate points.
 */
typedef struct mrt_model_set mrt_model_set;

/* Where the default model is: $MRT_MODEL as given (even if missing: loading
 * it then fails naming it), else the first default.gguf that is a regular
 * file in `dir` (when not NULL; *source = dir_label), the install's
 * <datadir>/mrt/models ("install path") or the models/ folder of the source
 * tree libmrt was built from ("source tree"). Returns a malloc'd path (free
 * with mrt_free) and sets *source (may be NULL) to "MRT_MODEL" or the
 * place's label; NULL when there is none (or out of memory). */
char *mrt_default_model_path(const char *dir, const char *dir_label, const char **source);

/* Loads the model at `path` (shared); the rate points come later. */
mrt_status mrt_model_set_open(const char *path, mrt_model_set **out, mrt_error *err);
void mrt_model_set_free(mrt_model_set *set);
/* The set's own model and the path it was opened with. */
const mrt_model *mrt_model_set_model(const mrt_model_set *set);
const char *mrt_model_set_path(const mrt_model_set *set);
/* A model's rate-point name in the set: NAME for mrt-NAME.gguf, another
 * file's name without ".gguf" (the default model is "default"); NULL for a
 * model not in the set (the folder's are known once the rate points were
 * read). */
const char *mrt_model_set_rate_name(mrt_model_set *set, const mrt_model *model);
/* The rate points, one per distinct model (by fingerprint): the set's own
 * model first, then the folder's in name order. The array belongs to the
 * set. A file beside the model that does not load is an error naming it. */
mrt_status mrt_model_set_rate_points(mrt_model_set *set, const mrt_model *const **models,
                                     int *count, mrt_error *err);
/* The rate point by rate id (0..255; two different files claiming one id is
 * an error), by name ("0.01"; or "low", "medium", "high": the lowest, the
 * middle (lower median) and the highest rate id, when at least three
 * different ones are present), or by a number equal to its name (0.01).
 * mrt_model_set_rate takes text: an integer is a rate id, anything else a
 * name. A failure says why and lists the rate points there are. */
mrt_status mrt_model_set_by_id(mrt_model_set *set, long long id, const mrt_model **out,
                               mrt_error *err);
mrt_status mrt_model_set_by_name(mrt_model_set *set, const char *name, const mrt_model **out,
                                 mrt_error *err);
mrt_status mrt_model_set_by_number(mrt_model_set *set, double number, const mrt_model **out,
                                   mrt_error *err);
mrt_status mrt_model_set_rate(mrt_model_set *set, const char *rate, const mrt_model **out,
                              mrt_error *err);
/* The model a bitstream was made with (its header's fingerprint,
 * mrt_info_read): the set's own or a rate point beside it, else retired
 * weights in the folder's retired/ (retired/mrt-*.gguf: models that were
 * rate points once and were replaced by better ones, kept so that streams
 * made with them still decode; they are never chosen to encode). When none
 * has that fingerprint, the set's own model, so that mrt_decode then
 * reports the mismatch naming both fingerprints. */
mrt_status mrt_model_set_for_stream(mrt_model_set *set, const uint8_t *fingerprint,
                                    const mrt_model **out, mrt_error *err);
/* Weights files loaded by model sets in this process (for tests and
 * mrt_debug()). */
int mrt_models_loaded(void);

/* Writes a model of the default ("XS") configuration with seeded random
 * weights: the starting point of training, and what the tests use. */
mrt_status mrt_model_write_random(const char *path, uint64_t seed, int rate_id, mrt_error *err);

/* -------------------------------------------------------------- codec */

/* Encodes an image into a self-contained bitstream (codec/BITSTREAM.md),
 * at the model's working size (mrt_working_size: the image's own size
 * unless the model is a rate point with a working scale below 1).
 * *out is malloc'd (free with mrt_free). */
mrt_status mrt_encode(const mrt_model *model, const mrt_image *img, int threads, uint8_t **out,
                      size_t *out_len, mrt_error *err);

/* Encoding with more effort: latent refinement. The one-pass encoder
 * (mrt_encode) codes the latent the analysis transform predicts; with
 * refine_steps > 0 the encoder then improves that latent for this image by
 * gradient descent through the decoder (codec/coding/refine.h), for a picture
 * closer to the original (MS-SSIM and PSNR) at no more bytes. The format
 * and the decoder are unchanged: any decoder reads the result. Each step
 * costs about two decodes' time (a 768x512 photo: about 0.5 s on two cores),
 * and memory grows to about 1.4 KB per pixel; images over 16 megapixels are
 * refused (MRT_ERR_TOO_BIG) before anything is allocated. */
typedef struct mrt_encode_options {
    int threads;      /* 0: default */
    int refine_steps; /* 0: none; 1..MRT_REFINE_MAX_STEPS */
    /* Refinement minimises L1 + (1 - MS-SSIM) + w * MSE at no more bytes.
     * Unless refine_mse_weight_given, w is the weight the model was trained
     * with (mrt.train.mse_weight, 0 if none); else w = refine_mse_weight,
     * 0..MRT_MAX_MSE_WEIGHT: lower favours MS-SSIM, higher PSNR (the same
     * bytes either way). The decoder does not care which was used. */
    int refine_mse_weight_given;
    float refine_mse_weight;
    /* The working size: 0 x 0 codes the image at the model's working size
     * (mrt_working_size; its own size unless the model has a working scale
     * below 1). Otherwise
     * the encoder codes a Lanczos-3 downscale to working_width x
     * working_height (1..width x 1..height) and the decoder scales it back
     * to the image's size with the normative upscale (mrt_image_upscale;
     * bitstream version 2, which version-1 readers refuse). Fewer pixels,
     * fewer bytes: the classical codecs' best trade at these rates. */
    int working_width, working_height;
} mrt_encode_options;

/* The largest MSE weight, in training (--mse-weight), in a model file
 * (mrt.train.mse_weight) and in refinement's objective. */
#define MRT_MAX_MSE_WEIGHT 10000.0f

#define MRT_REFINE_MAX_STEPS 10000
/* Refinement keeps every activation of the decoder over the whole image
 * (its RWKV spans the image): larger images are refused, not swapped. */
#define MRT_REFINE_MAX_PIXELS (4096LL * 4096LL)
/* mrt_encode with options (NULL: as mrt_encode with default threads). */
mrt_status mrt_encode_with(const mrt_model *model, const mrt_image *img,
                           const mrt_encode_options *options, uint8_t **out, size_t *out_len,
                           mrt_error *err);

/* Encodes `img` in at most max_bytes bytes, choosing the rate point (one of
 * models[0..nmodels), e.g. the shipped 0.005, 0.01 and 0.02 models) and the
 * working size: for each model, the largest working size that fits among
 * whole 64-pixel window grids from 1/16 scale to the full size (one more
 * column or row of windows a step, in the image's aspect, then the other
 * side's extra column or row), found in 3-6 encodes; then, of those, the
 * one whose decoded picture has the best MS-SSIM against img, PSNR
 * breaking ties, compared at about a megapixel (at most img's size), a
 * close call between the best two again at full size (see
 * mrt_budget_choice).
 * Models holding the same weights (a rate point made of another's,
 * mrt_rate_point_write) are tried once, through the one of working scale 1
 * when it is among them.
 * options: threads and refinement as for mrt_encode_with; its working size
 * must be 0 x 0. A budget below the smallest bitstream any model can make
 * for this image is MRT_ERR_ARGUMENT, naming that size. The result never
 * exceeds max_bytes. *choice (may be NULL) says what was chosen. */
/* A byte budget as people write it: "1500" or "1500B" (bytes), "2KB"
 * (2,000 bytes), "1.5KiB" (1,536 bytes); no spaces, at least 1 byte,
 * at most 1 GB. Returns 0 and sets *bytes, or -1 for anything else. */
int mrt_parse_byte_budget(const char *text, size_t *bytes);

typedef struct mrt_budget_choice {
    int model;                         /* index into models */
    int working_width, working_height; /* = the image's size when not scaled */
    size_t bytes;
    /* the decoded picture against img, both at compared_width x
     * compared_height: about a megapixel (at most img's own size), or
     * img's size after a close call between the best two (the candidates
     * are ranked there; mrt_decode and mrt_image_compare give the full-size
     * figures) */
    double psnr, msssim;
    int compared_width, compared_height;
} mrt_budget_choice;

mrt_status mrt_encode_budget(const mrt_model *const *models, int nmodels, const mrt_image *img,
                             size_t max_bytes, const mrt_encode_options *options,
                             uint8_t **out, size_t *out_len, mrt_budget_choice *choice,
                             mrt_error *err);

/* Decodes a bitstream made with the same model (else MRT_ERR_MODEL_MISMATCH
 * naming both fingerprints). The header is validated before anything is
 * allocated; damaged input gives MRT_ERR_CORRUPT, never a crash. */
mrt_status mrt_decode(const mrt_model *model, const uint8_t *data, size_t len, int threads,
                      mrt_image *out, mrt_error *err);

/* The picture at 1/scale of its size, for thumbnails and previews: scale
 * 1, 2, 4 or 8 (else MRT_ERR_ARGUMENT), each side rounded up
 * (ceil(width / scale)). Decodes at the working size the stream was coded
 * at, without the upscale to full size, and resizes that (mrt_image_resize,
 * Lanczos-3) to the scaled size: a version-2 stream coded at half size
 * costs half a full decode's synthesis and no upscale. Errors as
 * mrt_decode. Scale 1 is mrt_decode. */
mrt_status mrt_decode_scaled(const mrt_model *model, const uint8_t *data, size_t len, int scale,
                             int threads, mrt_image *out, mrt_error *err);

/* What a bitstream's header says (no model needed; CRCs are checked). */
typedef struct mrt_info {
    int version;
    int width, height;
    int working_width, working_height; /* the size the latent codes (= width, height in version 1) */
    int rate_id;
    uint8_t fingerprint[MRT_FINGERPRINT_BYTES];
    size_t bytes;          /* the whole bitstream */
    double bpp;            /* bytes * 8 / (width * height) */
    int nstreams;
    size_t stream_bytes[4];
} mrt_info;

mrt_status mrt_info_read(const uint8_t *data, size_t len, mrt_info *info, mrt_error *err);

/* The header as one line of JSON, without a newline: what `mrt info` prints
 * and the SQL function mrt_info() returns, e.g.
 *   {"version": 1, "width": 512, "height": 341, "bytes": 276, "bpp": 0.012647,
 *    "rate_id": 0, "model": "0123456789abcdef", "streams": [180, 83]}
 * Like snprintf: writes at most `size` bytes including the NUL and returns
 * the length the whole text needs (excluding the NUL).
 * MRT_INFO_JSON_MAX bytes are always enough. */
#define MRT_INFO_JSON_MAX 512
size_t mrt_info_json(const mrt_info *info, char *buf, size_t size);

/* `text` as a JSON string literal, quotes included: '"' and '\\' are
 * backslash-escaped and control characters become \u00XX; other bytes
 * (UTF-8 included) pass through. The quoting of mrt_json.h's writer, which
 * writes all of mrt's JSON.
 * malloc'd (free with mrt_free); NULL if out of memory. */
char *mrt_json_quote(const char *text);

#ifdef __cplusplus
}
#endif

#endif /* MRT_H */
