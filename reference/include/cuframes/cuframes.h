/* cuframes.h: the C ABI of libcuframes, the reference implementation of the cuframes protocol:
 * zero-copy sharing of video frames (host or CUDA memory) and, since protocol v2, encoded
 * packets, from one publisher process to many subscriber processes on one host.
 *
 * Usable from C99 and C++. Every function returns a cuframes_status (an int, 0 = success) unless
 * noted; no function throws or aborts on bad input. Options structs start with `struct_size`:
 * initialize them with cuframes_pub_options_init()/cuframes_sub_options_init() (or the *_INIT
 * macros) so that a program built against an older header keeps working with a newer library.
 *
 * Timeouts (timeout_ms): 0 = do not wait (CUFRAMES_AGAIN when nothing is available yet),
 * > 0 = wait at most that long (CUFRAMES_TIMEOUT), < 0 = no limit.
 *
 * Threads: a publisher's acquire/commit/publish_packet/set_codec_params, and a subscriber's
 * next_frame/release/next_packet/get_codec_params, must each be called from one thread at a
 * time. Each object runs an internal service thread for its socket.
 */
#ifndef CUFRAMES_CUFRAMES_H_
#define CUFRAMES_CUFRAMES_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes: the protocol's error codes (spec/cuframes.json "errors"), same values. */
typedef enum cuframes_status {
  CUFRAMES_OK = 0,
  CUFRAMES_AGAIN = 1,
  CUFRAMES_TIMEOUT = 2,
  CUFRAMES_INVALID_ARGUMENT = 3,
  CUFRAMES_NO_MEMORY = 4,
  CUFRAMES_SYSTEM = 5,
  CUFRAMES_KEY_IN_USE = 6,
  CUFRAMES_NOT_FOUND = 7,
  CUFRAMES_PEER_CLOSED = 8,
  CUFRAMES_PROTOCOL = 9,
  CUFRAMES_VERSION_MISMATCH = 10,
  CUFRAMES_UNSUPPORTED_KIND = 11,
  CUFRAMES_UNSUPPORTED_LAYOUT = 12,
  CUFRAMES_CORRUPT = 13,
  CUFRAMES_FULL = 14,
  CUFRAMES_EVICTED = 15,
  CUFRAMES_PERMISSION = 16,
  CUFRAMES_CUDA = 17,
  CUFRAMES_MESSAGE_TOO_LARGE = 18,
  CUFRAMES_UNKNOWN_MESSAGE = 19,
  CUFRAMES_STATE = 20,
  CUFRAMES_OVERSIZED = 21,
  CUFRAMES_NO_PACKET_RING = 22,
  CUFRAMES_NO_CODEC_PARAMS = 23,
  CUFRAMES_PACKET_OVERRUN = 24,
  CUFRAMES_UNSUPPORTED = 25
} cuframes_status;

/* Memory kinds (enum memory_kind). */
#define CUFRAMES_KIND_HOST        1u
#define CUFRAMES_KIND_CUDA_IPC    2u
#define CUFRAMES_KIND_CUDA_VMM_FD 3u /* optional (spec 7.1): where the device exports POSIX fds */
/* Bit of cuframes_sub_options.kinds_mask for a kind. */
#define CUFRAMES_KIND_BIT(kind) (1u << ((kind)-1u))

/* Pixel formats (enum pixel_format). */
#define CUFRAMES_PIXEL_OPAQUE 0u
#define CUFRAMES_PIXEL_NV12   1u
#define CUFRAMES_PIXEL_RGBA8  2u
#define CUFRAMES_PIXEL_GRAY8  3u
#define CUFRAMES_PIXEL_P010   4u

/* Codecs (enum codec). */
#define CUFRAMES_CODEC_OPAQUE 0u
#define CUFRAMES_CODEC_H264   1u
#define CUFRAMES_CODEC_HEVC   2u
#define CUFRAMES_CODEC_AV1    3u

#define CUFRAMES_FRAME_END_OF_STREAM 1u /* cuframes_frame_info.flags */
#define CUFRAMES_PACKET_KEYFRAME     1u /* packet flags */

/* Highest protocol version this library speaks. */
#define CUFRAMES_PROTO_VERSION_MAX 3u

typedef struct cuframes_publisher cuframes_publisher;
typedef struct cuframes_subscriber cuframes_subscriber;

/* Publisher events, delivered on the publisher's service thread. */
#define CUFRAMES_PUB_EVENT_ATTACHED 1u /* a subscriber became ACTIVE */
#define CUFRAMES_PUB_EVENT_DETACHED 2u /* an ACTIVE subscriber left (DETACH, ERROR, EOF) */
#define CUFRAMES_PUB_EVENT_EVICTED  3u /* the publisher evicted a subscriber */

typedef struct cuframes_pub_event {
  uint32_t kind;             /* CUFRAMES_PUB_EVENT_* */
  uint32_t subscriber_index; /* its subscriber slot */
  uint32_t pid;              /* its pid (SO_PEERCRED) */
  uint32_t reason;           /* DETACHED/EVICTED: a cuframes_status */
  uint64_t start_seq;        /* ATTACHED: its first frame */
} cuframes_pub_event;

typedef void (*cuframes_pub_event_fn)(void* user, const cuframes_pub_event* event);

typedef struct cuframes_pub_options {
  uint32_t struct_size; /* sizeof(cuframes_pub_options) */
  uint32_t memory_kind; /* CUFRAMES_KIND_HOST (default), _CUDA_IPC or _CUDA_VMM_FD */
  const char* key;      /* 1..64 chars of [A-Za-z0-9_.-], not starting with '.' */
  uint32_t width;       /* frame geometry, informational (header and frame meta) */
  uint32_t height;
  uint32_t pixel_format;      /* CUFRAMES_PIXEL_* */
  uint32_t pitch;             /* bytes per row; 0 = width * bytes per pixel */
  uint64_t slot_bytes;        /* bytes per slot buffer; 0 = derived from the geometry */
  uint32_t slot_count;        /* 2..256, default 4 */
  uint32_t max_subscribers;   /* 1..64, default 8 */
  uint32_t ack_timeout_ms;    /* evict a subscriber that holds a slot longer; default 2000 */
  uint32_t max_proto_version; /* runtime cap: 1 acts as a v1-only publisher; 0 = library max */
  uint64_t packet_capacity;   /* v2 packet ring data bytes (power of two >= 4096); 0 = none */
  uint32_t max_packet_bytes;  /* largest packet; max_packet_bytes + 32 <= capacity / 2 */
  uint32_t codec;             /* CUFRAMES_CODEC_* */
  uint32_t file_mode;         /* mode of the shm and socket files: 0600 (default) or 0660 */
  uint32_t allow_other_uids;  /* nonzero: accept subscribers of another uid */
  int32_t cuda_device;        /* CUDA kinds: device ordinal, default 0 */
  uint32_t reserved0;
  cuframes_pub_event_fn on_event; /* optional */
  void* on_event_user;
} cuframes_pub_options;

typedef struct cuframes_sub_options {
  uint32_t struct_size; /* sizeof(cuframes_sub_options) */
  uint32_t kinds_mask;  /* CUFRAMES_KIND_BIT() of each accepted kind; default HOST */
  const char* key;
  uint32_t max_proto_version;  /* runtime cap: 1 acts as a v1-only subscriber; 0 = library max */
  uint32_t want_packets;       /* nonzero: ask for the v2 packet ring */
  int32_t cuda_device;         /* CUDA kinds: device ordinal, default 0 */
  uint32_t connect_timeout_ms; /* whole handshake; default 2000 */
} cuframes_sub_options;

/* A slot handed out by cuframes_pub_acquire(). */
typedef struct cuframes_slot {
  uint64_t seq;        /* the frame this buffer carries once committed */
  void* data;          /* host pointer (HOST) or device pointer (CUDA kinds) */
  uint64_t capacity;   /* slot_bytes */
  void* cuda_stream;   /* CUDA kinds: cudaStream_t to enqueue writes on; else NULL */
  uint32_t slot_index; /* (seq - 1) mod slot_count */
  uint32_t memory_kind;
} cuframes_slot;

/* Frame metadata passed to cuframes_pub_commit(). */
typedef struct cuframes_frame_info {
  int64_t timestamp_ns;
  uint32_t width;
  uint32_t height;
  uint32_t pixel_format;
  uint32_t pitch;
  uint64_t payload_bytes; /* <= slot_bytes */
  uint32_t flags;         /* CUFRAMES_FRAME_END_OF_STREAM */
  uint32_t reserved0;
  uint64_t user_data;
} cuframes_frame_info;

/* A frame returned by cuframes_sub_next_frame(). Valid until cuframes_sub_release(). */
typedef struct cuframes_frame {
  uint64_t seq;
  int64_t timestamp_ns;
  uint32_t width;
  uint32_t height;
  uint32_t pixel_format;
  uint32_t pitch;
  uint64_t payload_bytes;
  uint32_t flags;
  uint32_t memory_kind;
  uint64_t user_data;
  const void* data;  /* host pointer (HOST) or device pointer (CUDA kinds) */
  void* cuda_stream; /* CUDA kinds: a stream already ordered after the frame's ready event */
} cuframes_frame;

/* A packet returned by cuframes_sub_next_packet(). */
typedef struct cuframes_packet {
  uint64_t seq;
  int64_t pts;
  uint32_t size;              /* bytes copied (or needed, on CUFRAMES_INVALID_ARGUMENT) */
  uint32_t flags;             /* CUFRAMES_PACKET_KEYFRAME */
  uint32_t params_generation; /* codec params generation the packet belongs to */
  uint32_t reserved0;
} cuframes_packet;

/* What a subscriber learned at connect time. */
typedef struct cuframes_sub_info {
  uint32_t proto_version; /* negotiated */
  uint32_t memory_kind;
  uint32_t subscriber_index;
  uint32_t generation;
  uint64_t start_seq; /* the first frame this subscriber will see */
  uint32_t publisher_lib_version;
  uint32_t packet_ring; /* nonzero if the packet ring is available to this subscriber */
  uint32_t width;
  uint32_t height;
  uint32_t pixel_format;
  uint32_t pitch;
  uint64_t slot_bytes;
  uint32_t slot_count;
  uint32_t reserved0;
} cuframes_sub_info;

/* Fills *options with the defaults (sets struct_size). Returns nothing. */
void cuframes_pub_options_init(cuframes_pub_options* options);
/* Fills *options with the defaults (sets struct_size). Returns nothing. */
void cuframes_sub_options_init(cuframes_sub_options* options);

/* Returns the spec name of a status ("PEER_CLOSED", ...), or "UNKNOWN". Never NULL. */
const char* cuframes_status_name(int status);
/* Returns a one-line English description of a status. Never NULL. */
const char* cuframes_strerror(int status);
/* Returns lib_version: (major << 16) | (minor << 8) | patch. */
uint32_t cuframes_version(void);
/* Returns nonzero if this build offers the CUDA memory kinds (CUDA_IPC; CUDA_VMM_FD also needs a
 * device that exports POSIX file descriptors, else creating or offering it is UNSUPPORTED). */
int cuframes_cuda_kind_built(void);
/* Returns nonzero if CUDA_VMM_FD can be used on CUDA device `device` here: the CUDA kinds are
 * built, the driver has the virtual memory management calls and the device exports and imports
 * allocations as POSIX file descriptors. Initialises CUDA when the kinds are built. */
int cuframes_cuda_vmm_usable(int device);

/* Creates the publisher of options->key and starts serving subscribers; the socket file
 * <dir>/cuframes-<key>.sock appearing is the readiness signal.
 * Returns CUFRAMES_OK (*out set), CUFRAMES_INVALID_ARGUMENT (NULL argument, bad key, option out
 * of range, struct_size too small), CUFRAMES_UNSUPPORTED (memory kind not built/offered),
 * CUFRAMES_KEY_IN_USE (a live publisher owns the key), CUFRAMES_PERMISSION (a stale file of
 * another user cannot be removed, or access denied), CUFRAMES_NO_MEMORY, CUFRAMES_CUDA,
 * CUFRAMES_SYSTEM. */
int cuframes_pub_create(const cuframes_pub_options* options, cuframes_publisher** out);

/* Detaches every subscriber (DETACH), marks the segment CLOSED, removes the socket and shm
 * files, frees the publisher. NULL is a no-op. Returns nothing. */
void cuframes_pub_destroy(cuframes_publisher* pub);

/* Gets the buffer for the next frame, waiting until every subscriber that must see the slot's
 * previous frame has released it; evicts subscribers that exceed ack_timeout_ms.
 * Returns CUFRAMES_OK (*out filled), CUFRAMES_AGAIN (timeout_ms == 0, slot still held),
 * CUFRAMES_TIMEOUT, CUFRAMES_STATE (a slot is already acquired), CUFRAMES_INVALID_ARGUMENT
 * (NULL), CUFRAMES_CUDA. */
int cuframes_pub_acquire(cuframes_publisher* pub, int32_t timeout_ms, cuframes_slot* out);

/* Publishes the acquired frame. CUDA_IPC: the frame's writes must be enqueued on
 * slot.cuda_stream (or complete) before this call.
 * Returns CUFRAMES_OK, CUFRAMES_STATE (nothing acquired), CUFRAMES_INVALID_ARGUMENT (NULL, or
 * payload_bytes > slot_bytes), CUFRAMES_CUDA. */
int cuframes_pub_commit(cuframes_publisher* pub, const cuframes_frame_info* info);

/* Returns the number of ACTIVE subscribers (0 for NULL). */
uint32_t cuframes_pub_subscriber_count(const cuframes_publisher* pub);

/* Waits until at least `count` subscribers are ACTIVE.
 * Returns CUFRAMES_OK, CUFRAMES_TIMEOUT, CUFRAMES_INVALID_ARGUMENT (NULL). */
int cuframes_pub_wait_subscribers(cuframes_publisher* pub, uint32_t count, int32_t timeout_ms);

/* Appends an encoded packet to the packet ring (flags: CUFRAMES_PACKET_KEYFRAME).
 * Returns CUFRAMES_OK, CUFRAMES_NO_PACKET_RING (none configured), CUFRAMES_OVERSIZED
 * (size > max_packet_bytes), CUFRAMES_INVALID_ARGUMENT (NULL data with size > 0, unknown flag),
 * CUFRAMES_STATE, CUFRAMES_CORRUPT. */
int cuframes_pub_publish_packet(cuframes_publisher* pub, const void* data, uint32_t size,
                                int64_t pts, uint32_t flags);

/* Publishes codec parameters (e.g. SPS/PPS); later packets carry the new generation.
 * Returns CUFRAMES_OK, CUFRAMES_NO_PACKET_RING, CUFRAMES_OVERSIZED (size > 4096),
 * CUFRAMES_INVALID_ARGUMENT, CUFRAMES_STATE. */
int cuframes_pub_set_codec_params(cuframes_publisher* pub, uint32_t codec, const void* data,
                                  uint32_t size);

/* Connects to the publisher of options->key and attaches.
 * Returns CUFRAMES_OK (*out set), CUFRAMES_INVALID_ARGUMENT, CUFRAMES_NOT_FOUND (no publisher),
 * CUFRAMES_PERMISSION, CUFRAMES_TIMEOUT, CUFRAMES_PEER_CLOSED, CUFRAMES_PROTOCOL,
 * CUFRAMES_STATE, CUFRAMES_VERSION_MISMATCH, CUFRAMES_UNSUPPORTED_KIND, CUFRAMES_FULL,
 * CUFRAMES_UNSUPPORTED_LAYOUT, CUFRAMES_CORRUPT, CUFRAMES_CUDA, CUFRAMES_UNSUPPORTED (no
 * accepted kind is built), CUFRAMES_NO_MEMORY, CUFRAMES_SYSTEM, or any code the publisher sent
 * in an ERROR. */
int cuframes_sub_connect(const cuframes_sub_options* options, cuframes_subscriber** out);

/* Sends DETACH and frees the subscriber; frames still held must not be used afterwards. NULL is
 * a no-op. Returns nothing. */
void cuframes_sub_close(cuframes_subscriber* sub);

/* Copies the connect-time information. Returns CUFRAMES_OK, CUFRAMES_INVALID_ARGUMENT (NULL). */
int cuframes_sub_get_info(const cuframes_subscriber* sub, cuframes_sub_info* out);

/* Returns the next frame, in order, without copying it.
 * Returns CUFRAMES_OK (*out filled), CUFRAMES_AGAIN (timeout_ms == 0, none yet),
 * CUFRAMES_TIMEOUT, CUFRAMES_PEER_CLOSED (the publisher closed or died; detected within
 * 250 ms), CUFRAMES_EVICTED, CUFRAMES_CORRUPT, CUFRAMES_CUDA, CUFRAMES_INVALID_ARGUMENT (NULL),
 * or the code of an ERROR the publisher sent (e.g. CUFRAMES_PROTOCOL). */
int cuframes_sub_next_frame(cuframes_subscriber* sub, int32_t timeout_ms, cuframes_frame* out);

/* Releases (acknowledges) a frame; after this the frame's buffer must not be touched. Frames
 * may be released in any order; the publisher sees the longest released prefix.
 * Returns CUFRAMES_OK, CUFRAMES_INVALID_ARGUMENT (NULL, or a frame not currently held),
 * CUFRAMES_CUDA, CUFRAMES_PEER_CLOSED / CUFRAMES_EVICTED (connection already ended). */
int cuframes_sub_release(cuframes_subscriber* sub, const cuframes_frame* frame);

/* Copies the next packet into buf (buf_size bytes).
 * Returns CUFRAMES_OK (*out filled), CUFRAMES_AGAIN, CUFRAMES_TIMEOUT, CUFRAMES_NO_PACKET_RING
 * (no ring, v1 negotiated, or want_packets was 0), CUFRAMES_INVALID_ARGUMENT (NULL, or buf too
 * small: out->size is the size needed and the packet is kept for the next call),
 * CUFRAMES_PACKET_OVERRUN (lapped: resumes at the latest keyframe), CUFRAMES_PEER_CLOSED,
 * CUFRAMES_CORRUPT. */
int cuframes_sub_next_packet(cuframes_subscriber* sub, int32_t timeout_ms, void* buf,
                             uint32_t buf_size, cuframes_packet* out);

/* Copies the current codec parameters into buf; *size is set to their length, *codec and
 * *generation (either may be NULL) to their codec and generation.
 * Returns CUFRAMES_OK, CUFRAMES_NO_PACKET_RING, CUFRAMES_NO_CODEC_PARAMS (none published yet),
 * CUFRAMES_INVALID_ARGUMENT (NULL sub/size, or buf too small: *size tells the size needed),
 * CUFRAMES_CORRUPT. */
int cuframes_sub_get_codec_params(cuframes_subscriber* sub, void* buf, uint32_t buf_size,
                                  uint32_t* size, uint32_t* codec, uint32_t* generation);

#ifdef __cplusplus
}
#endif

#endif /* CUFRAMES_CUFRAMES_H_ */
