// spec_model.h: the machine-readable twin (spec/cuframes.json) loaded at run time.
//
// Every offset, size, message type, error code, constant and requirement text the harness uses
// comes from here, never from an implementation's headers (BRIEF principle 7). StructView reads
// and writes a struct's fields by name over a byte span, with atomic access for the fields the
// twin marks atomic.
#ifndef CUFRAMES_CONFORMANCE_SRC_SPEC_MODEL_H_
#define CUFRAMES_CONFORMANCE_SRC_SPEC_MODEL_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cuframes::conform {

struct FieldDef {
  std::string name;
  size_t offset = 0;
  size_t size = 0;
  std::string type;  // u16, u32, u64, i64, bytes, reserved, struct:X
  bool atomic = false;
  std::string writer;
  int since = 1;
  // The twin's "values" constraint, verbatim as JSON text ("" when the field has none): a fixed
  // list ([1], ["SEGMENT_MAGIC"]), a range ({"min": 2, "max": 256}), "enum:X" or "flags:X".
  std::string values;
};

// One row of a state table (spec section 4; twin state_machines.<role>.transitions).
struct TransitionDef {
  std::string from, event, to, action, error;
};

struct StateMachineDef {
  std::string role;  // "subscriber" or "publisher"
  std::vector<std::string> states;
  std::vector<std::string> events;
  std::vector<TransitionDef> transitions;
};

struct StructDef {
  std::string name;
  size_t size = 0;
  std::string section;
  std::vector<FieldDef> fields;
};

struct MessageDef {
  std::string name;
  uint16_t type = 0;
  std::string payload;
  std::string direction;
  uint32_t min_length = 0;
  uint32_t max_length = 0;
};

struct Requirement {
  std::string id;
  std::string level;  // MUST, SHOULD, MAY
  std::string section;
  std::string text;
};

class Spec {
 public:
  // Loads the twin at `path`. Returns true on success; on failure *error says why.
  bool Load(const std::string& path, std::string* error);

  // Lookups throw std::out_of_range naming the missing item: a harness that asks for a field the
  // twin lacks is a harness bug (or a twin change) that must be loud, not a silent zero.
  const StructDef& Struct(std::string_view name) const;
  const FieldDef& Field(std::string_view st, std::string_view field) const;
  size_t Off(std::string_view st, std::string_view field) const { return Field(st, field).offset; }
  size_t Size(std::string_view st) const { return Struct(st).size; }
  uint64_t Const(std::string_view name) const;
  // The highest of the twin's proto_versions (the newest version the spec defines).
  int MaxProto() const { return max_proto_; }
  uint32_t Enum(std::string_view enum_name, std::string_view value) const;
  uint32_t Err(std::string_view name) const;
  // Returns the error's name, or "UNKNOWN(<n>)" for a value outside the table.
  std::string ErrName(uint64_t value) const;
  bool ErrKnown(uint64_t value) const;
  const MessageDef& Msg(std::string_view name) const;
  // Returns the message with wire type `type`, or nullptr.
  const MessageDef* MsgByType(uint16_t type) const;
  // Returns the message name for `type` or "UNKNOWN(<n>)".
  std::string MsgName(uint16_t type) const;
  const std::vector<Requirement>& requirements() const { return requirements_; }
  // Returns the requirement `id` or nullptr.
  const Requirement* Req(std::string_view id) const;
  const std::string& path() const { return path_; }
  // Returns the state machine of `role` ("subscriber", "publisher"); throws std::out_of_range.
  const StateMachineDef& Machine(std::string_view role) const;
  // Returns the values of enum `name` (value name -> number); throws std::out_of_range.
  const std::map<std::string, uint32_t, std::less<>>& EnumValues(std::string_view name) const;
  const std::map<std::string, StructDef, std::less<>>& structs() const { return structs_; }
  const std::vector<MessageDef>& messages() const { return messages_; }
  const std::map<std::string, uint32_t, std::less<>>& errors() const { return errors_; }

 private:
  std::string path_;
  std::map<std::string, StructDef, std::less<>> structs_;
  std::map<std::string, uint64_t, std::less<>> constants_;
  std::map<std::string, std::map<std::string, uint32_t, std::less<>>, std::less<>> enums_;
  std::map<std::string, uint32_t, std::less<>> errors_;
  std::map<uint32_t, std::string> error_names_;
  std::vector<MessageDef> messages_;
  std::vector<Requirement> requirements_;
  std::vector<StateMachineDef> machines_;
  int max_proto_ = 0;
};

// Named-field access to one struct instance inside a byte span (a TLV payload or a mapping).
// Fields marked atomic in the twin are loaded with acquire and stored with release order through
// std::atomic_ref, because the peer may be writing them concurrently (spec SHM-HDR-03).
class StructView {
 public:
  StructView(const Spec& spec, std::string_view st, std::span<uint8_t> bytes, size_t base = 0);

  // Returns the field's value (u16/u32/u64/i64 as raw bits). Throws std::out_of_range if the
  // field does not fit in the span.
  uint64_t Get(std::string_view field) const;
  // Stores `value` into the field. Throws std::out_of_range if the field does not fit.
  void Set(std::string_view field, uint64_t value);
  // Returns the field's bytes.
  std::span<uint8_t> Bytes(std::string_view field) const;
  // Returns the whole struct's bytes.
  std::span<uint8_t> All() const;
  size_t base() const { return base_; }
  const StructDef& def() const { return *def_; }

 private:
  const FieldDef& Checked(std::string_view field) const;

  const StructDef* def_;
  std::span<uint8_t> bytes_;
  size_t base_;
};

}  // namespace cuframes::conform

#endif  // CUFRAMES_CONFORMANCE_SRC_SPEC_MODEL_H_
