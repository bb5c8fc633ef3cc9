// Per-library attribution from the LD_AUDIT module's records
// (src/profile/audit/procforge_audit.c, format in records.h): la_objopen is called right after
// each object is mapped, la_activity(ADD) before the first dependency is
// looked for and la_activity(CONSISTENT) after all of them are relocated
// (glibc 2.36 elf/rtld.c dl_main). So
//   load time of object i   = objopen(i) - objopen(i-1)   (search + open + mmap; ADD for the first)
//   relocation, all objects = CONSISTENT - last objopen     (relocation, RELRO, TLS, __libc_early_init)
// ld.so has no per-object relocation hook (and Debian strips the internal
// _dl_relocate_object symbol), so the relocation time is split between
// objects in proportion to their relocation work read from the files
// (ldso::analyze_relocations, weighed by ldso::estimate_object()): an estimate, and labelled so.
// Without records (static program, no module) the objects come from the
// r_debug link map read at RT_CONSISTENT, with counts and no times.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <map>
#include <mutex>

#include "ldso/relocations.hpp"
#include "profile/audit/records.h"
#include "profile/detail.hpp"

namespace procforge::profile::detail {

namespace {

std::mutex work_mutex;
std::map<std::string, std::optional<ldso::RelocationWork>> work_cache;

std::optional<ldso::RelocationWork> relocation_work(const std::string& path) {
  if (path.empty() || path.front() != '/') return std::nullopt;  // the vDSO
  std::lock_guard<std::mutex> g(work_mutex);
  auto it = work_cache.find(path);
  if (it != work_cache.end()) return it->second;
  auto w = ldso::analyze_relocations(path, false);
  std::optional<ldso::RelocationWork> v;
  if (w) v = *w;
  work_cache[path] = v;
  return v;
}

}  // namespace

std::vector<AuditRecord> read_audit_records(int fd) {
  std::vector<AuditRecord> out;
  if (fd < 0) return out;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);  // a child that kept the pipe must not block us
  std::string buf;
  char chunk[65536];
  for (;;) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0) break;
    buf.append(chunk, static_cast<std::size_t>(n));
  }
  // Field by field from the bytes (records are packed back to back, so
  // unaligned): the layout is records.h's.
  constexpr std::size_t kHeader = PF_AUDIT_HEADER_BYTES;
  auto field = [&](std::size_t at, std::size_t member, auto& value) {
    std::memcpy(&value, buf.data() + at + member, sizeof value);
  };
  std::size_t off = 0;
  while (off + kHeader <= buf.size()) {
    AuditRecord r;
    std::uint32_t len = 0;
    field(off, offsetof(pf_audit_record, kind), r.kind);
    field(off, offsetof(pf_audit_record, name_len), len);
    field(off, offsetof(pf_audit_record, ns), r.ns);
    field(off, offsetof(pf_audit_record, addr), r.addr);
    if (len > PF_AUDIT_NAME_MAX || off + kHeader + len > buf.size()) break;
    r.name.assign(buf.data() + off + kHeader, len);
    out.push_back(std::move(r));
    off += kHeader + len;
  }
  return out;
}

void attribute_libraries(const std::vector<AuditRecord>& recs, const RawRun& raw, Run& run) {
  const auto& m = raw.marks;
  if (m[m_rt_add].present) run.add_resume_ns = m[m_rt_add].resume_ns;
  if (m[m_rt_consistent].present) {
    run.consistent_stop_ns = m[m_rt_consistent].stop_ns;
    run.consistent_resume_ns = m[m_rt_consistent].resume_ns;
  }
  std::optional<std::int64_t> add, consistent, last_open;
  std::vector<LoadedObject> objs;
  for (const auto& r : recs) {
    if (r.kind == PF_AUDIT_ACT_ADD && !add) add = r.ns;
    else if (r.kind == PF_AUDIT_ACT_CONSISTENT && add && !consistent) consistent = r.ns;
    else if (r.kind == PF_AUDIT_PREINIT && !run.audit_preinit_ns) run.audit_preinit_ns = r.ns;
    else if (r.kind == PF_AUDIT_OBJOPEN && !consistent) {
      LoadedObject o;
      o.path = r.name.empty() ? raw.facts.image : r.name;
      o.base = r.addr;
      if (add) {
        o.mapped_at_us = static_cast<double>(r.ns - *add) / 1000.0;
        o.load_us = static_cast<double>(r.ns - last_open.value_or(*add)) / 1000.0;
        last_open = r.ns;
      }
      objs.push_back(std::move(o));
    }
  }
  run.audit_add_ns = add;
  run.audit_consistent_ns = consistent;
  if (objs.empty()) objs = raw.link_map;

  double total_cost = 0;
  std::vector<double> costs(objs.size(), 0);
  for (std::size_t i = 0; i < objs.size(); ++i) {
    auto w = relocation_work(objs[i].path);
    if (!w) continue;
    objs[i].relative = w->relative + w->relr_relative;
    objs[i].symbol_lookups = w->symbol_lookups;
    objs[i].pages_dirtied = w->pages_dirtied;
    objs[i].irelative = w->irelative;
    costs[i] = ldso::estimate_object(*w).relocating_ns();
    total_cost += costs[i];
  }
  if (consistent && last_open && total_cost > 0) {
    const double reloc_us = static_cast<double>(*consistent - *last_open) / 1000.0;
    for (std::size_t i = 0; i < objs.size(); ++i) objs[i].reloc_us = reloc_us * costs[i] / total_cost;
  }
  run.objects = std::move(objs);
}

}  // namespace procforge::profile::detail
