#include "spec_model.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "bytes.h"

namespace cuframes::conform {

using nlohmann::json;

bool Spec::Load(const std::string& path, std::string* error) {
  path_ = path;
  std::ifstream in(path);
  if (!in) {
    *error = "cannot open the twin " + path;
    return false;
  }
  json j;
  try {
    in >> j;
    for (auto& [name, c] : j.at("constants").items()) {
      constants_[name] = c.at("value").get<uint64_t>();
    }
    for (auto& [name, e] : j.at("enums").items()) {
      for (auto& [k, v] : e.items())
        enums_[name][k] = v.get<uint32_t>();
    }
    for (auto& e : j.at("errors")) {
      errors_[e.at("name").get<std::string>()] = e.at("value").get<uint32_t>();
      error_names_[e.at("value").get<uint32_t>()] = e.at("name").get<std::string>();
    }
    for (auto& [name, s] : j.at("structs").items()) {
      StructDef def;
      def.name = name;
      def.size = s.at("size").get<size_t>();
      def.section = s.value("section", "");
      for (auto& f : s.at("fields")) {
        FieldDef fd;
        fd.name = f.at("name").get<std::string>();
        fd.offset = f.at("offset").get<size_t>();
        fd.size = f.at("size").get<size_t>();
        fd.type = f.at("type").get<std::string>();
        fd.atomic = f.value("atomic", false);
        fd.writer = f.value("writer", "");
        fd.since = f.value("since", 1);
        if (f.contains("values")) fd.values = f.at("values").dump();
        def.fields.push_back(fd);
      }
      structs_[name] = def;
    }
    for (auto& m : j.at("messages")) {
      MessageDef md;
      md.name = m.at("name").get<std::string>();
      md.type = m.at("type").get<uint16_t>();
      md.payload = m.at("payload").get<std::string>();
      md.direction = m.at("direction").get<std::string>();
      md.min_length = m.at("min_length").get<uint32_t>();
      md.max_length = m.at("max_length").get<uint32_t>();
      messages_.push_back(md);
    }
    for (auto& [role, m] : j.at("state_machines").items()) {
      StateMachineDef sm;
      sm.role = role;
      sm.states = m.at("states").get<std::vector<std::string>>();
      sm.events = m.at("events").get<std::vector<std::string>>();
      for (auto& t : m.at("transitions")) {
        sm.transitions.push_back({t.at("from").get<std::string>(), t.at("event").get<std::string>(),
                                  t.at("to").get<std::string>(), t.at("action").get<std::string>(),
                                  t.at("error").get<std::string>()});
      }
      machines_.push_back(std::move(sm));
    }
    for (const int v : j.at("proto_versions").get<std::vector<int>>()) {
      max_proto_ = std::max(max_proto_, v);
    }
    for (auto& r : j.at("requirements")) {
      requirements_.push_back({r.at("id").get<std::string>(), r.at("level").get<std::string>(),
                               r.at("section").get<std::string>(),
                               r.at("text").get<std::string>()});
    }
  } catch (const std::exception& e) {
    *error = "cannot parse the twin " + path + ": " + e.what();
    return false;
  }
  return true;
}

const StateMachineDef& Spec::Machine(std::string_view role) const {
  for (const StateMachineDef& m : machines_) {
    if (m.role == role) return m;
  }
  throw std::out_of_range("twin has no state machine " + std::string(role));
}

const std::map<std::string, uint32_t, std::less<>>& Spec::EnumValues(std::string_view name) const {
  auto it = enums_.find(name);
  if (it == enums_.end()) throw std::out_of_range("twin has no enum " + std::string(name));
  return it->second;
}

const StructDef& Spec::Struct(std::string_view name) const {
  auto it = structs_.find(name);
  if (it == structs_.end()) throw std::out_of_range("twin has no struct " + std::string(name));
  return it->second;
}

const FieldDef& Spec::Field(std::string_view st, std::string_view field) const {
  for (const FieldDef& f : Struct(st).fields) {
    if (f.name == field) return f;
  }
  throw std::out_of_range("twin struct " + std::string(st) + " has no field " + std::string(field));
}

uint64_t Spec::Const(std::string_view name) const {
  auto it = constants_.find(name);
  if (it == constants_.end()) throw std::out_of_range("twin has no constant " + std::string(name));
  return it->second;
}

uint32_t Spec::Enum(std::string_view enum_name, std::string_view value) const {
  auto it = enums_.find(enum_name);
  if (it == enums_.end()) throw std::out_of_range("twin has no enum " + std::string(enum_name));
  auto v = it->second.find(value);
  if (v == it->second.end()) {
    throw std::out_of_range("twin enum " + std::string(enum_name) + " has no " +
                            std::string(value));
  }
  return v->second;
}

uint32_t Spec::Err(std::string_view name) const {
  auto it = errors_.find(name);
  if (it == errors_.end()) throw std::out_of_range("twin has no error " + std::string(name));
  return it->second;
}

bool Spec::ErrKnown(uint64_t value) const {
  return value <= UINT32_MAX && error_names_.count(static_cast<uint32_t>(value)) != 0;
}

std::string Spec::ErrName(uint64_t value) const {
  if (ErrKnown(value)) return error_names_.at(static_cast<uint32_t>(value));
  return "UNKNOWN(" + std::to_string(value) + ")";
}

const MessageDef& Spec::Msg(std::string_view name) const {
  for (const MessageDef& m : messages_) {
    if (m.name == name) return m;
  }
  throw std::out_of_range("twin has no message " + std::string(name));
}

const MessageDef* Spec::MsgByType(uint16_t type) const {
  for (const MessageDef& m : messages_) {
    if (m.type == type) return &m;
  }
  return nullptr;
}

std::string Spec::MsgName(uint16_t type) const {
  const MessageDef* m = MsgByType(type);
  return m ? m->name : "UNKNOWN(" + std::to_string(type) + ")";
}

const Requirement* Spec::Req(std::string_view id) const {
  for (const Requirement& r : requirements_) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

StructView::StructView(const Spec& spec, std::string_view st, std::span<uint8_t> bytes, size_t base)
    : def_(&spec.Struct(st)), bytes_(bytes), base_(base) {}

const FieldDef& StructView::Checked(std::string_view field) const {
  for (const FieldDef& f : def_->fields) {
    if (f.name != field) continue;
    if (base_ > bytes_.size() || bytes_.size() - base_ < f.offset + f.size) {
      throw std::out_of_range(def_->name + "." + f.name + " lies outside the " +
                              std::to_string(bytes_.size()) + "-byte buffer");
    }
    return f;
  }
  throw std::out_of_range("twin struct " + def_->name + " has no field " + std::string(field));
}

uint64_t StructView::Get(std::string_view field) const {
  const FieldDef& f = Checked(field);
  uint8_t* p = bytes_.data() + base_ + f.offset;
  if (f.atomic && f.size == 8 && reinterpret_cast<uintptr_t>(p) % 8 == 0) {
    return std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(p))
        .load(std::memory_order_acquire);
  }
  if (f.atomic && f.size == 4 && reinterpret_cast<uintptr_t>(p) % 4 == 0) {
    return std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(p))
        .load(std::memory_order_acquire);
  }
  return LoadLe(bytes_, base_ + f.offset, f.size > 8 ? 8 : f.size);
}

void StructView::Set(std::string_view field, uint64_t value) {
  const FieldDef& f = Checked(field);
  uint8_t* p = bytes_.data() + base_ + f.offset;
  if (f.atomic && f.size == 8 && reinterpret_cast<uintptr_t>(p) % 8 == 0) {
    std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(p))
        .store(value, std::memory_order_release);
    return;
  }
  if (f.atomic && f.size == 4 && reinterpret_cast<uintptr_t>(p) % 4 == 0) {
    std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(p))
        .store(static_cast<uint32_t>(value), std::memory_order_release);
    return;
  }
  if (f.size > 8) {
    std::memset(p, 0, f.size);
    StoreLe(bytes_, base_ + f.offset, value, 8);
    return;
  }
  StoreLe(bytes_, base_ + f.offset, value, f.size);
}

std::span<uint8_t> StructView::Bytes(std::string_view field) const {
  const FieldDef& f = Checked(field);
  return bytes_.subspan(base_ + f.offset, f.size);
}

std::span<uint8_t> StructView::All() const {
  if (base_ > bytes_.size() || bytes_.size() - base_ < def_->size) {
    throw std::out_of_range(def_->name + " lies outside the buffer");
  }
  return bytes_.subspan(base_, def_->size);
}

}  // namespace cuframes::conform
