// adapter_common.h: shared pieces of the cuframes-pub / cuframes-sub adapters: JSON-lines output,
// the deterministic frame/packet content and the exit codes.
//
// Deterministic content (both adapters, documented for other implementations' adapters):
//   frame seq n, byte i:   (n * 31 + i * 7) & 0xff
//   packet seq k, byte i:  (k * 13 + i * 5 + 1) & 0xff
//   packet seq k size:     1 + (k * 7919) mod B   (B = --packet-bytes)
//   packet k is a keyframe when (k - 1) mod G == 0 (G = --gop), so packet 1 is one
//   codec params:          the ASCII bytes "cuframes-params-" followed by the decimal codec value
//   checksum:              FNV-1a 64 of the payload bytes, as 16 lowercase hex digits
// Exit codes: 0 ok, 1 usage, 2 protocol/peer error, 3 timeout, 4 verification failure,
// 77 unsupported (e.g. --kind cuda in a build without CUDA).
//
// --diag (both adapters) adds to every event "t_ns" (CLOCK_MONOTONIC, comparable across
// processes and with fault.h's markers) and, to every event but "frame" and "packet", "fds" (open
// descriptors of the process), "socks" (how many of them are sockets), "key_socks" (how many are
// bound to the key's socket path: a publisher's listener and accepted connections), "shm_maps"
// (mappings of /dev/shm/cuframes-* files) and "nv_maps" (mappings of /dev/nvidia* devices): the
// crash-recovery tests compare them to find leaks.
#ifndef CUFRAMES_REFERENCE_TOOLS_ADAPTER_COMMON_H_
#define CUFRAMES_REFERENCE_TOOLS_ADAPTER_COMMON_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cuframes::adapter {

inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 1;
inline constexpr int kExitPeer = 2;
inline constexpr int kExitTimeout = 3;
inline constexpr int kExitVerify = 4;
inline constexpr int kExitUnsupported = 77;

// ExitCodeFor (a cuframes_status to one of these) is in adapter_cli.h, with the rest of the tools'
// command-line interface.

inline uint8_t FrameByte(uint64_t seq, uint64_t i) {
  return static_cast<uint8_t>((seq * 31 + i * 7) & 0xff);
}
inline uint8_t PacketByte(uint64_t seq, uint64_t i) {
  return static_cast<uint8_t>((seq * 13 + i * 5 + 1) & 0xff);
}
inline uint32_t PacketSize(uint64_t seq, uint32_t max_bytes) {
  return 1 + static_cast<uint32_t>((seq * 7919) % max_bytes);
}
inline bool PacketIsKey(uint64_t seq, uint64_t gop) {
  return gop != 0 && (seq - 1) % gop == 0;
}
std::string CodecParamsBytes(uint32_t codec);

void FillFrame(uint8_t* dst, uint64_t size, uint64_t seq);
void FillPacket(uint8_t* dst, uint64_t size, uint64_t seq);
// Returns true if `data` holds the deterministic content of frame/packet `seq`.
bool CheckFrame(const uint8_t* data, uint64_t size, uint64_t seq);
bool CheckPacket(const uint8_t* data, uint64_t size, uint64_t seq);

uint64_t Fnv1a64(const uint8_t* data, size_t size);
std::string Hex64(uint64_t v);

// Prints one JSON line to stdout (thread-safe, flushed). `body` is the inside of the object.
// With SetDiag(true), the --diag fields are appended.
void EmitJson(const std::string& body);
// `key` names the socket whose descriptors "key_socks" counts.
void SetDiag(bool on, const std::string& key);
// Prints {"event":"error","code":N,"name":"...","where":"..."}.
void EmitError(int status, const std::string& where);

// Returns true when `--kind cuda` can work here: the build has the CUDA kind and the machine has a
// CUDA device that initialises (ADAPTER.md ADP-KIND-01; otherwise the adapter reports UNSUPPORTED
// and exits 77).
bool CudaUsable();
// Returns true when `--kind cuda_vmm_fd` can work here: CudaUsable() and device 0 can export and
// import allocations as POSIX file descriptors (spec 7.1; otherwise UNSUPPORTED, exit 77).
bool CudaVmmUsable();

// SIGTERM (ADP-SIG-01): InstallTermHandler() makes SIGTERM set a flag instead of killing the
// process; TermRequested() reads it, so the adapter's loops end with a clean shut-down.
void InstallTermHandler();
bool TermRequested();

// JSON string literal of `s` (quotes and escapes).
std::string Quote(const std::string& s);

// Returns the proto cap: `*max_proto` (--max-proto, already range-checked) when given, else
// $CUFRAMES_MAX_PROTO, else 0 (the library's highest). Returns false if the variable is malformed.
bool ProtoCap(const uint64_t* max_proto, uint32_t* out);

}  // namespace cuframes::adapter

#endif  // CUFRAMES_REFERENCE_TOOLS_ADAPTER_COMMON_H_
