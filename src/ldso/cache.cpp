// /etc/ld.so.cache as glibc 2.36 reads it (elf/dl-cache.c
// _dl_load_cache_lookup(), search_cache(); layouts in
// sysdeps/generic/dl-cache.h). Three shapes of file are accepted, as there:
//   - new only:  "glibc-ld.so.cache1.1" header, 24-byte entries, string
//                offsets relative to the start of that header;
//   - old only:  "ld.so-1.7.0" header, 12-byte entries, string offsets
//                relative to the string table after the entries;
//   - old + new: the new table at the 8-aligned end of the old entries (then
//                the new table is the one searched).
// The new format may carry an extension directory (magic 0xEAA42174) whose
// tag-1 section lists glibc-hwcaps subdirectory names; an entry whose hwcap
// has only bit 62 set (ignoring the low 32 bits and 10 ISA-level bits) names
// one of them by index. Every read is bounds-checked through ByteView: a
// damaged cache yields an Error (ld.so ignores such a file) or entries marked
// invalid, never a read outside the buffer.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

#include "common/unique_fd.hpp"
#include "ldso/detail.hpp"
#include "procforge/elf.hpp"
#include "procforge/ldso.hpp"

namespace procforge::ldso {

namespace {

constexpr std::string_view kMagicOld = "ld.so-1.7.0";
constexpr std::string_view kMagicNew = "glibc-ld.so.cache1.1";
constexpr std::uint64_t kOldHeader = 16;  // char magic[11] + pad + unsigned nlibs
constexpr std::uint64_t kOldEntry = 12;   // int32 flags, uint32 key, value
constexpr std::uint64_t kNewHeader = 48;
constexpr std::uint64_t kNewEntry = 24;                 // + uint32 osversion, uint64 hwcap
constexpr std::uint32_t kExtensionMagic = 0xEAA42174u;  // (uint32_t) -358342284
constexpr std::uint32_t kTagGenerator = 0, kTagHwcaps = 1;
constexpr std::uint64_t kHwcapExtension = 1ull << 62;
constexpr std::uint64_t kIsaLevelMask = (1u << 10) - 1;
constexpr std::int32_t kDefaultFlags = 0x0303;  // FLAG_ELF_LIBC6 | FLAG_X8664_LIB64 (_DL_CACHE_DEFAULT_ID)

bool starts_with(std::span<const std::uint8_t> b, std::uint64_t off, std::string_view magic) {
  return elf::range_fits(off, magic.size(), b.size()) && std::memcmp(b.data() + off, magic.data(), magic.size()) == 0;
}

bool is_hwcap_extension(std::uint64_t hwcap) { return ((hwcap >> 32) & ~kIsaLevelMask) == (kHwcapExtension >> 32); }

// The x86_64 _dl_cache_check_flags().
bool flags_ok(std::int32_t flags) { return flags == kDefaultFlags; }

// The fields both entry formats start with (struct file_entry and
// file_entry_new): flags, then the key and value as offsets into the string
// table, which the old format counts from after its entries and the new one
// from its header.
CacheEntry decode_entry(const elf::ByteView& entries, std::uint64_t e, const elf::ByteView& strings) {
  CacheEntry ce;
  ce.flags = static_cast<std::int32_t>(*entries.u32(e));
  auto key = strings.cstr(*entries.u32(e + 4));
  auto value = strings.cstr(*entries.u32(e + 8));
  ce.valid = key && value;
  if (key) ce.key = std::string(*key);
  if (value) ce.value = std::string(*value);
  return ce;
}

// Where the table ld.so searches lies, from the file's magic(s), with the
// size checks _dl_load_cache_lookup() makes before it uses the file.
struct Layout {
  Cache::Format format = Cache::Format::new_only;
  std::uint64_t new_base = 0;   // where the new header starts (new tables)
  std::uint32_t old_count = 0;  // nlibs of the old table (old_only)
};

Result<Layout> find_layout(std::span<const std::uint8_t> bytes) {
  const elf::ByteView v(bytes, false);
  Layout l;
  if (starts_with(bytes, 0, kMagicNew)) {
    // dl-cache.c: cachesize > sizeof *cache_new and the entries fit.
    if (bytes.size() <= kNewHeader) return Error(EINVAL, "ld.so.cache: file too short for its header");
    const std::uint32_t n = *v.u32(20);
    if ((bytes.size() - kNewHeader) / kNewEntry < n)
      return Error(EINVAL, "ld.so.cache: nlibs " + std::to_string(n) + " does not fit in the file");
    l.format = Cache::Format::new_only;
    return l;
  }
  if (!starts_with(bytes, 0, kMagicOld))
    return Error(EINVAL, "ld.so.cache: unknown magic (neither glibc-ld.so.cache1.1 nor ld.so-1.7.0)");
  if (bytes.size() <= kOldHeader) return Error(EINVAL, "ld.so.cache: file too short for its header");
  const std::uint32_t n = *v.u32(12);
  if ((bytes.size() - kOldHeader) / kOldEntry < n)
    return Error(EINVAL, "ld.so.cache: nlibs " + std::to_string(n) + " does not fit in the file");
  // ALIGN_CACHE: aligned to alignof(struct cache_file_new) = 8.
  const std::uint64_t off = (kOldHeader + std::uint64_t{n} * kOldEntry + 7) & ~std::uint64_t{7};
  if (elf::range_fits(off, kNewHeader, bytes.size()) && starts_with(bytes, off, kMagicNew)) {
    l.format = Cache::Format::old_with_new;
    l.new_base = off;
  } else {
    l.format = Cache::Format::old_only;
    l.old_count = n;
  }
  return l;
}

// The old format's entries: string offsets count from after the entries.
std::vector<CacheEntry> read_old_entries(std::span<const std::uint8_t> bytes, std::uint32_t n) {
  const elf::ByteView v(bytes, false);
  const std::uint64_t strings = kOldHeader + std::uint64_t{n} * kOldEntry;
  const elf::ByteView sv(*v.sub(strings, bytes.size() - strings), false);
  std::vector<CacheEntry> entries;
  for (std::uint32_t i = 0; i < n; ++i)
    entries.push_back(decode_entry(v, kOldHeader + std::uint64_t{i} * kOldEntry, sv));
  return entries;
}

struct NewTable {
  std::vector<CacheEntry> entries;
  std::uint32_t extension_offset = 0;  // from the file start; 0: none
};

// The new table at L.new_base; string offsets count from its header. Its
// flags byte says the byte order: 0 unset, 2 little (this machine), 3 big;
// only "big" is refused (cache_file_new_matches_endian).
Result<NewTable> read_new_table(std::span<const std::uint8_t> bytes, const Layout& l) {
  const auto hdr = *elf::ByteView(bytes, false).sub(l.new_base, bytes.size() - l.new_base);
  const elf::ByteView hv(hdr, false);
  const bool embedded = l.format == Cache::Format::old_with_new;
  if (embedded && !elf::range_fits(kNewHeader, 0, hdr.size()))
    return Error(EINVAL, "ld.so.cache: embedded new table is truncated");
  const std::uint8_t endian = *hv.u8(28) & 3;
  if (endian == 1 || endian == 3)
    return Error(EINVAL, "ld.so.cache: byte order flag " + std::to_string(endian) + " does not match this machine");
  const std::uint32_t n = *hv.u32(20);
  if (embedded && (hdr.size() - kNewHeader) / kNewEntry < n)
    return Error(EINVAL, "ld.so.cache: embedded table nlibs does not fit in the file");
  NewTable t;
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::uint64_t e = kNewHeader + std::uint64_t{i} * kNewEntry;
    CacheEntry ce = decode_entry(hv, e, hv);
    ce.hwcap = *hv.u64(e + 16);
    t.entries.push_back(std::move(ce));
  }
  t.extension_offset = *hv.u32(32);
  return t;
}

struct Extensions {
  std::string generator;
  std::vector<std::string> hwcaps_names;
};

// The extension directory at EXT (cache_extension_load): offsets relative to
// the file start. A bad directory disables it; it does not make the cache
// unusable.
Extensions read_extensions(std::span<const std::uint8_t> bytes, std::uint32_t ext) {
  const elf::ByteView v(bytes, false);
  Extensions x;
  if (ext == 0 || ext % 4 != 0 || !elf::range_fits(ext, 8, bytes.size()) || *v.u32(ext) != kExtensionMagic) return x;
  const std::uint32_t count = *v.u32(ext + 4);
  if (!elf::range_fits(ext + 8ull, std::uint64_t{count} * 16, bytes.size())) return x;
  std::optional<std::pair<std::uint32_t, std::uint32_t>> hw, gen;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint64_t s = ext + 8ull + std::uint64_t{i} * 16;
    const std::uint32_t tag = *v.u32(s), off = *v.u32(s + 8), size = *v.u32(s + 12);
    if (!elf::range_fits(off, size, bytes.size())) return x;
    if (tag == kTagHwcaps) hw = {off, size};
    else if (tag == kTagGenerator) gen = {off, size};
  }
  if (gen) x.generator = std::string(reinterpret_cast<const char*>(bytes.data()) + gen->first, gen->second);
  // cache_extension_verify: non-empty, 4-aligned, a multiple of 4.
  if (hw && hw->second != 0 && hw->first % 4 == 0 && hw->second % 4 == 0) {
    for (std::uint32_t k = 0; k < hw->second / 4; ++k) {
      auto name = v.cstr(*v.u32(hw->first + 4ull * k));
      x.hwcaps_names.push_back(name ? std::string(*name) : std::string());
    }
  }
  return x;
}

// A glibc-hwcaps entry names its subdirectory by index into NAMES, with its
// ISA level in the 10 bits above the index.
void name_hwcaps_entries(std::vector<CacheEntry>& entries, const std::vector<std::string>& names) {
  for (auto& ce : entries) {
    if (!is_hwcap_extension(ce.hwcap)) continue;
    ce.isa_level = static_cast<unsigned>((ce.hwcap >> 32) & kIsaLevelMask);
    const auto idx = static_cast<std::uint32_t>(ce.hwcap);
    if (idx < names.size()) ce.hwcaps_subdir = names[idx];
    else ce.hwcaps_subdir = std::string();  // index without a name: priority 0, never used
  }
}

}  // namespace

int cache_libcmp(std::string_view a, std::string_view b) {
  std::size_t i = 0, j = 0;
  auto at = [](std::string_view s, std::size_t k) -> int {
    return k < s.size() ? static_cast<unsigned char>(s[k]) : 0;
  };
  auto digit = [](int c) { return c >= '0' && c <= '9'; };
  while (at(a, i) != 0) {
    const int c1 = at(a, i), c2 = at(b, j);
    if (digit(c1)) {
      if (!digit(c2)) return 1;
      // Numerically. glibc accumulates and subtracts in int and, built
      // without -ftrapv, wraps: the same in unsigned arithmetic, converted
      // once (modulo 2^32 in C++20), without the signed overflow.
      unsigned v1 = 0, v2 = 0;
      while (digit(at(a, i))) v1 = v1 * 10 + static_cast<unsigned>(at(a, i++) - '0');
      while (digit(at(b, j))) v2 = v2 * 10 + static_cast<unsigned>(at(b, j++) - '0');
      if (v1 != v2) return static_cast<int>(v1 - v2);
    } else if (digit(c2)) {
      return -1;
    } else if (c1 != c2) {
      return c1 - c2;
    } else {
      ++i, ++j;
    }
  }
  return at(a, i) - at(b, j);
}

Result<Cache> Cache::parse(std::span<const std::uint8_t> bytes) {
  auto layout = find_layout(bytes);
  if (!layout) return layout.error();
  Cache c;
  c.format_ = layout->format;
  if (c.format_ == Format::old_only) {
    c.entries_have_hwcap_ = false;
    c.entries_ = read_old_entries(bytes, layout->old_count);
    return c;
  }
  auto table = read_new_table(bytes, *layout);
  if (!table) return table.error();
  c.entries_ = std::move(table->entries);
  Extensions x = read_extensions(bytes, table->extension_offset);
  c.generator_ = std::move(x.generator);
  c.hwcaps_names_ = std::move(x.hwcaps_names);
  name_hwcaps_entries(c.entries_, c.hwcaps_names_);
  return c;
}

Result<Cache> Cache::load(const std::string& path) {
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error(errno, "opening " + path + ": " + errno_name(errno));
  struct stat st {};
  std::vector<std::uint8_t> buf;
  if (fstat(fd.get(), &st) == 0 && st.st_size > 0) buf.resize(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < buf.size()) {
    const ssize_t r = pread(fd.get(), buf.data() + got, buf.size() - got, static_cast<off_t>(got));
    if (r <= 0) break;
    got += static_cast<std::size_t>(r);
  }
  buf.resize(got);
  auto c = parse(buf);
  if (!c) return c.error().with_context(path);
  return c;
}

namespace detail {

Result<std::shared_ptr<const Cache>> shared_cache(const std::string& path) {
  // One parse per version of the file, as ld.so maps it once per process:
  // a batch of predictions must not parse it per program.
  using Key = std::tuple<dev_t, ino_t, off_t, std::int64_t, std::int64_t>;
  static std::mutex mutex;
  static std::map<std::string, std::pair<Key, std::shared_ptr<const Cache>>> parsed;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Error(errno, "opening " + path + ": " + errno_name(errno));
  const Key key{st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
  {
    std::lock_guard lock(mutex);
    if (auto it = parsed.find(path); it != parsed.end() && it->second.first == key) return it->second.second;
  }
  auto c = Cache::load(path);
  if (!c) return c.error();
  auto shared = std::make_shared<const Cache>(std::move(*c));
  std::lock_guard lock(mutex);
  parsed[path] = {key, shared};
  return shared;
}

}  // namespace detail

std::optional<std::string> Cache::lookup(std::string_view name, const SystemInfo& sys) const {
  // Priorities of the glibc-hwcaps names (glibc_hwcaps_priorities_init):
  // position in the active list, 1 = best; 0 = not active.
  auto priority = [&](const CacheEntry& e) -> std::uint32_t {
    if (!e.hwcaps_subdir) return 0;
    for (std::size_t i = 0; i < sys.hwcaps_subdirs.size(); ++i)
      if (sys.hwcaps_subdirs[i] == *e.hwcaps_subdir) return static_cast<std::uint32_t>(i + 1);
    return 0;
  };
  // dl_cache_hwcap_isa_level_compatible(): bit (1 << level) of the CPU's
  // isa_1 (bit 0 baseline, 1 v2, 2 v3, 3 v4).
  auto isa_ok = [&](const CacheEntry& e) {
    const std::uint32_t cpu = (1u << sys.isa_level) - 1;
    return e.isa_level < 32 && ((1u << e.isa_level) & cpu) == (1u << e.isa_level);
  };
  // Legacy hwcap bits (glibc <= 2.36): an entry is skipped when it needs a
  // bit this CPU lacks. _DL_HWCAP_PLATFORM is zero on x86_64 (no platform bits).
  const std::uint64_t tls_mask = 1ull << 63;
  const std::uint64_t exclude = ~((sys.hwcap & sys.hwcap_mask) | tls_mask);

  // Binary search, descending order, as search_cache() does it: on a bad
  // string offset it gives up (returns nothing).
  int left = 0, right = static_cast<int>(entries_.size()) - 1;
  const std::string* best = nullptr;
  std::uint32_t best_priority = 0;
  while (left <= right) {
    int middle = (left + right) / 2;
    if (!entries_[middle].valid) return std::nullopt;
    const int cmpres = cache_libcmp(name, entries_[middle].key);
    if (cmpres == 0) {
      left = middle;
      while (middle > 0) {
        const auto& prev = entries_[middle - 1];
        if (!prev.valid || cache_libcmp(name, prev.key) != 0) break;
        --middle;
      }
      do {
        const CacheEntry& lib = entries_[middle];
        if (middle > left && (!lib.valid || cache_libcmp(name, lib.key) != 0)) break;
        if (!flags_ok(lib.flags) || !lib.valid) continue;
        bool named_hwcap = false;
        if (entries_have_hwcap_) {
          named_hwcap = is_hwcap_extension(lib.hwcap);
          if (named_hwcap && !isa_ok(lib)) continue;
          if (!named_hwcap && best != nullptr) break;
          if (sys.at_least(2, 37)) {
            if (!named_hwcap && lib.hwcap != 0) continue;  // legacy hwcap entries are ignored since 2.37
          } else if ((lib.hwcap & exclude) && !named_hwcap) {
            continue;
          }
          if (named_hwcap) {
            const std::uint32_t p = priority(lib);
            if (p == 0) continue;
            if (best == nullptr || p < best_priority) best_priority = p;
            else continue;
          }
        }
        best = &lib.value;
        if (!named_hwcap && lib.flags == kDefaultFlags) break;
      } while (++middle <= right);
      break;
    }
    if (cmpres < 0) left = middle + 1;
    else right = middle - 1;
  }
  if (!best) return std::nullopt;
  return *best;
}

}  // namespace procforge::ldso
