// musl's dynamic linker as a prediction, beside glibc's: which objects
// ld-musl-ARCH.so.1 loads for a program, from where, and the lines it prints
// when one cannot be loaded. Follows musl 1.2.3 ldso/dynlink.c, whose rules
// differ from glibc's in ways that change answers:
//   - __dls3(): LD_LIBRARY_PATH and LD_PRELOAD are read unless the start is
//     secure; ld.so run as a command lists (ldd mode) when called --list or
//     by a name ending in "ldd", and then takes its own name (ldso.name, the
//     base of the path file below) from the program's PT_INTERP;
//   - load_library(): names "libc.*", "libpthread.*", "librt.*", "libm.*",
//     "libdl.*", "libutil.*", "libxnet.*" and ldso.name are the loader itself
//     (musl's libc is its loader); a name with '/' is opened as is; other
//     names are matched against the short names of loaded objects, then
//     searched in LD_LIBRARY_PATH, then in the RPATH of the object that needs
//     it and of each object up its needed_by chain (DT_RUNPATH replaces
//     DT_RPATH, and is inherited like it), then in the path file
//     PREFIX/etc/ld-musl-ARCH.path (PREFIX: ldso.name without its last two
//     components) or, when there is none, "/lib:/usr/local/lib:/usr/lib";
//     a file found twice (device and inode) is one object;
//   - path_open(): elements split at ':' and '\n', the first file that opens
//     wins: there is no check of the ELF class or machine (a library for
//     another architecture earlier in the path stops the search and the
//     load fails, unless it happens to map); an open() error other than
//     ENOENT, ENOTDIR, EACCES or ENAMETOOLONG ends the whole search;
//   - fixup_rpath(): $ORIGIN and ${ORIGIN} only (any other '$' drops the
//     whole RPATH); the program's origin is /proc/self/exe when the kernel
//     mapped it, the name it was opened as otherwise; a library's is the
//     path it was opened as, not resolved;
//   - map_library(): only e_type and PT_DYNAMIC are checked (ENOEXEC);
//   - load_library(): a found object that defines __libc_start_main and
//     stdin (another libc) is replaced by the loader ("libc.so");
//   - load_deps(): every object of the list in list order, its DT_NEEDED in
//     order; a failure prints "Error loading shared library NAME: STRERROR
//     (needed by OBJECT)" and the walk goes on;
//   - reloc_all() (musl_symbols.cpp): every reference looked up in the
//     global namespace, "Error relocating OBJECT: SYMBOL: symbol not found"
//     for each that nothing defines; then, after any of these lines, the
//     run exits with 127 (ldso_fail), in --list mode and in a real start.
// Nothing is mapped or run: candidate files are opened read-only (with
// O_NONBLOCK, where musl would block on a FIFO) and read with pread().
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <tuple>

#include "common/unique_fd.hpp"
#include "ldso/detail.hpp"
#include "ldso/musl_symbols.hpp"
#include "ldso/relocations.hpp"
#include "procforge/elf.hpp"

namespace procforge::ldso {

const char* loader_kind_name(LoaderKind k) { return k == LoaderKind::musl ? "musl" : "glibc"; }

bool is_musl_loader(const std::string& path) {
  auto musl_name = [](const std::string& p) { return p.substr(p.rfind('/') + 1).rfind("ld-musl-", 0) == 0; };
  if (path.empty()) return false;
  if (musl_name(path)) return true;
  if (path.substr(path.rfind('/') + 1).rfind("ld-linux", 0) == 0) return false;  // glibc's, by its name
  char real[PATH_MAX];
  return ::realpath(path.c_str(), real) && musl_name(real);
}

namespace detail {

namespace {

constexpr std::uint64_t kMaxFile = 1ull << 30;  // a library bigger than this is not read whole

std::uint16_t le16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | p[1] << 8); }
std::uint32_t le32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[3]} << 24;
}
std::uint64_t le64(const std::uint8_t* p) { return std::uint64_t{le32(p)} | std::uint64_t{le32(p + 4)} << 32; }

}  // namespace

// musl's strerror() texts (src/errno/__strerror.h), which differ from
// glibc's for some (ENAMETOOLONG, ELOOP, ENOMEM, 0).
std::string musl_strerror(int e) {
  switch (e) {
    case 0: return "No error information";
    case EACCES: return "Permission denied";
    case EPERM: return "Operation not permitted";
    case ENOENT: return "No such file or directory";
    case ENOMEM: return "Out of memory";
    case EBUSY: return "Resource busy";
    case EIO: return "I/O error";
    case ENXIO: return "No such device or address";
    case ENODEV: return "No such device";
    case ENOTDIR: return "Not a directory";
    case EISDIR: return "Is a directory";
    case ETXTBSY: return "Text file busy";
    case ENOEXEC: return "Exec format error";
    case EINVAL: return "Invalid argument";
    case ELOOP: return "Symbolic link loop";
    case ENAMETOOLONG: return "Filename too long";
    case EMFILE: return "No file descriptors available";
    case EFBIG: return "File too large";
    case EOVERFLOW: return "Value too large for data type";
    default: return std::strerror(e);
  }
}

// map_library()'s checks on the bytes: e_type, the program header table as
// it reads it (960-byte buffer, pread() for the rest), PT_DYNAMIC. Read as
// ELF64 whatever EI_CLASS says, as musl does.
int musl_map_check(const std::vector<std::uint8_t>& b) {
  constexpr std::size_t kBuf = 896 + 64;
  const std::size_t l = std::min(b.size(), kBuf);
  if (l < 64) return ENOEXEC;
  const std::uint16_t type = le16(b.data() + 16);
  if (type != ET_DYN && type != ET_EXEC) return ENOEXEC;
  const std::uint64_t phoff = le64(b.data() + 32);
  const std::uint64_t phentsize = le16(b.data() + 54), phnum = le16(b.data() + 56);
  const std::uint64_t phsize = phentsize * phnum;
  if ((phsize > kBuf - 64 || phoff + phsize > l) && !elf::range_fits(phoff, phsize, b.size())) return ENOEXEC;
  for (std::uint64_t i = 0; i < phnum; ++i) {
    const std::uint64_t at = phoff + i * phentsize;
    if (!elf::range_fits(at, 4, b.size())) break;
    if (le32(b.data() + at) == PT_DYNAMIC) return 0;
  }
  return ENOEXEC;
}

Result<std::vector<std::uint8_t>> musl_read_all(int fd, std::uint64_t size) {
  std::vector<std::uint8_t> b(static_cast<std::size_t>(std::min(size, kMaxFile)));
  std::size_t got = 0;
  while (got < b.size()) {
    const ssize_t r = ::pread(fd, b.data() + got, b.size() - got, static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Error(errno, "read");
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  b.resize(got);
  // A directory or special file: read() decides (EISDIR for a directory).
  if (size == 0) {
    std::uint8_t probe[64];
    const ssize_t r = ::read(fd, probe, sizeof probe);
    if (r < 0) return Error(errno, "read");
    b.assign(probe, probe + r);
  }
  return b;
}

namespace {

constexpr std::size_t kBufSize = 2 * NAME_MAX + 2;  // load_library()'s buf: longer candidates are not tried
const char* const kDefaultSysPath = "/lib:/usr/local/lib:/usr/lib";
const char* const kArch = "x86_64";  // LDSO_ARCH

// The non-empty elements of S split at any of SEPS.
std::vector<std::string> elements(const std::string& s, const char* seps) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t end = std::min(s.size(), s.find_first_of(seps, i));
    if (end > i) out.push_back(s.substr(i, end - i));
    i = end + 1;
  }
  return out;
}

// What musl learns from one file it opened.
struct MuslFile {
  dev_t dev = 0;
  ino_t ino = 0;
  int map_errno = 0;  // map_library() failed with this (0: it maps)
  std::vector<std::string> needed;
  std::optional<std::string> rpath_orig;  // DT_RUNPATH if present, else DT_RPATH (decode_dyn)
  bool runpath = false;
  bool other_libc = false;  // defines __libc_start_main and stdin
  std::string problem;      // the dynamic section could not be read (then treated as empty)
  MuslSymbols symbols;      // what the lookup and do_relocs() read
};

// The dynamic section as decode_dyn() keeps it, and the other-libc test.
void read_dynamic(const std::vector<std::uint8_t>& bytes, MuslFile& f) {
  f.symbols = MuslSymbols::read(bytes);
  auto file = elf::File::parse(bytes);
  if (!file) {
    f.problem = file.error().message;
    return;
  }
  auto dyn = file->dynamic_info();
  if (!dyn) {
    f.problem = dyn.error().message;
    return;
  }
  for (auto n : dyn->needed) f.needed.emplace_back(n);
  if (dyn->runpath) f.rpath_orig = std::string(*dyn->runpath), f.runpath = true;
  else if (dyn->rpath) f.rpath_orig = std::string(*dyn->rpath);
  // load_library(): find_sym(&temp_dso, "__libc_start_main", 1) and "stdin".
  f.other_libc = f.symbols.defines("__libc_start_main", true) && f.symbols.defines("stdin", true);
}

// One object of musl's list (struct dso).
struct Dso {
  std::string name;  // p->name: the path it was opened as
  std::optional<std::string> shortname;
  dev_t dev = 0;
  ino_t ino = 0;
  int needed_by = -1;
  MuslFile file;
  bool kernel_mapped = false;
  bool is_ldso = false;
  std::optional<std::optional<std::string>> rpath;  // fixup_rpath()'s result, once known
};

class MuslLoader {
 public:
  MuslLoader(const Request& req, int cwd_fd, Prediction& p) : req_(req), cwd_fd_(cwd_fd), p_(p) {}

  Result<bool> start();
  void load_preloads();
  void load_deps();
  void relocate();
  void finish();

 private:
  // What one open() found.
  struct Opened {
    int fd = -1;  // >= 0: opened; -1: not found (search goes on); -2: search ends
    std::string path;
  };

  int load_library(const std::string& name, int needed_by);
  Opened open_candidate(const std::string& path);
  Opened path_open(const std::string& name, const std::string& s, FoundBy by, const std::string& via);
  const std::optional<std::string>& fixup_rpath(int l);
  void read_sys_path();
  void report(const std::string& name, const std::string& path, FoundBy by, const std::string& via, int needed_by);
  void fail(const std::string& name, int needed_by);
  void note(LoaderError e);
  std::optional<std::string> env(const std::string& key) const;

  const Request& req_;
  int cwd_fd_;
  Prediction& p_;
  std::vector<Dso> list_;  // head first, in next order
  int ldso_ = -1;          // ldso's place in the list once something needed it
  std::string ldso_name_;
  std::optional<std::string> env_path_;
  std::optional<std::string> sys_path_;
  unsigned reported_ = 0;  // ldd mode: reserved names already printed
  bool ldd_mode_ = false;  // run as a command: the program is not kernel-mapped, ldso.name is its PT_INTERP
  int errno_ = 0;          // the loader's errno, carried from call to call as in the real process
  std::vector<std::string> tried_;
  FoundBy found_by_ = FoundBy::not_found;
  std::string found_via_;
  bool preloading_ = false;  // load_preload(): what is found is reported as LD_PRELOAD
};

std::optional<std::string> MuslLoader::env(const std::string& key) const {
  std::optional<std::string> v;
  for (const auto& e : req_.envp)
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=')
      v = e.substr(key.size() + 1);
  return v;
}

// __dls3(): the program heads the list; ldso.name is PT_INTERP (kernel
// start, and ldd mode), the loader's own name otherwise.
Result<bool> MuslLoader::start() {
  Opened o = open_candidate(req_.program);
  if (o.fd < 0) return Error(errno_, "opening " + req_.program + ": " + errno_name(errno_));
  const UniqueFd fd(o.fd);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Error(errno, "fstat " + req_.program);
  auto bytes = musl_read_all(fd.get(), static_cast<std::uint64_t>(S_ISREG(st.st_mode) ? st.st_size : 0));
  if (!bytes) return Error(bytes.error().err, "reading " + req_.program + ": " + errno_name(bytes.error().err));
  auto file = elf::File::parse(*bytes);
  if (!file) return Error(ENOEXEC, req_.program + ": not an ELF file musl's loader can load");
  auto interp = file->interpreter();
  const bool explicit_mode = !req_.explicit_loader.empty();
  ldd_mode_ = explicit_mode;
  ldso_name_ = interp && *interp ? std::string(**interp) : req_.explicit_loader;
  Dso app;
  app.name = req_.program;
  app.kernel_mapped = !explicit_mode;
  app.dev = st.st_dev;
  app.ino = st.st_ino;
  read_dynamic(*bytes, app.file);
  if (!app.file.problem.empty()) p_.warnings.push_back(req_.program + ": " + app.file.problem);
  list_.push_back(std::move(app));
  if (!req_.secure) {
    env_path_ = env("LD_LIBRARY_PATH");
  } else if (env("LD_LIBRARY_PATH")) {
    p_.warnings.emplace_back("LD_LIBRARY_PATH is ignored in secure mode (AT_SECURE)");
  }
  if (env_path_) p_.library_path = elements(*env_path_, ":\n");
  // ldd mode prints the loader first, under the name it stands in for.
  Object self;
  self.name = ldso_name_;
  self.path = ldso_name_;
  self.found_by = FoundBy::interpreter;
  self.found_via = "PT_INTERP";
  p_.objects.push_back(std::move(self));
  return true;
}

// load_preload(): names split at white space and ':', each loaded with no
// needer; a failure is silent.
void MuslLoader::load_preloads() {
  if (req_.secure) return;
  auto pre = env("LD_PRELOAD");
  if (!pre) return;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) {
      preloading_ = true;
      load_library(cur, -1);
      preloading_ = false;
    }
    cur.clear();
  };
  for (char c : *pre) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == ':') flush();
    else cur += c;
  }
  flush();
}

// load_deps(): the list grows while it is walked; each object's DT_NEEDED in order.
void MuslLoader::load_deps() {
  for (std::size_t i = 0; i < list_.size(); ++i) {
    if (list_[i].is_ldso) continue;  // ldso.deps = no_deps
    const auto needed = list_[i].file.needed;
    for (const auto& name : needed)
      if (load_library(name, static_cast<int>(i)) < 0) fail(name, static_cast<int>(i));
  }
}

void MuslLoader::fail(const std::string& name, int needed_by) {
  LoaderError e;
  e.object = name;
  e.message = musl_strerror(errno_) + " (needed by " + list_[static_cast<std::size_t>(needed_by)].name + ")";
  e.stage = LoaderError::Stage::musl_loading;
  Object o;
  o.name = name;
  o.found_by = FoundBy::not_found;
  o.needed_by = list_[static_cast<std::size_t>(needed_by)].name;
  o.tried = tried_;
  p_.objects.push_back(std::move(o));
  note(std::move(e));
}

// error() before runtime: the line is printed, the first is the run's error.
void MuslLoader::note(LoaderError e) {
  p_.trace_stderr.push_back(error_line("", e));
  if (!p_.error) p_.error = std::move(e);
  else p_.warnings.push_back(p_.trace_stderr.back());
}

void MuslLoader::report(const std::string& name, const std::string& path, FoundBy by, const std::string& via,
                        int needed_by) {
  Object o;
  o.name = name;
  o.path = path;
  o.found_by = by;
  o.found_via = via;
  if (needed_by >= 0) o.needed_by = list_[static_cast<std::size_t>(needed_by)].name;
  p_.objects.push_back(std::move(o));
}

// open(PATH, O_RDONLY|O_CLOEXEC), relative to the request's cwd; errno_ as
// the loader's would be.
MuslLoader::Opened MuslLoader::open_candidate(const std::string& path) {
  Opened o;
  o.path = path;
  o.fd = ::openat(cwd_fd_, path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (o.fd < 0) errno_ = errno;
  return o;
}

// path_open(): each element of S in turn, "%.*s/%s" into a 512-byte buffer.
MuslLoader::Opened MuslLoader::path_open(const std::string& name, const std::string& s, FoundBy by,
                                         const std::string& via) {
  std::size_t i = 0;
  for (;;) {
    i = std::min(s.size(), s.find_first_not_of(":\n", i));
    const std::size_t end = std::min(s.size(), s.find_first_of(":\n", i));
    if (end == i) return {};
    const std::string cand = s.substr(i, end - i) + "/" + name;
    if (cand.size() < kBufSize) {
      tried_.push_back(cand);
      Opened o = open_candidate(cand);
      if (o.fd >= 0) {
        found_by_ = by;
        found_via_ = via;
        return o;
      }
      if (errno_ != ENOENT && errno_ != ENOTDIR && errno_ != EACCES && errno_ != ENAMETOOLONG) {
        o.fd = -2;
        return o;
      }
    }
    i = end;
  }
}

// fixup_rpath(): $ORIGIN and ${ORIGIN} replaced by the object's directory;
// any other '$' drops the RPATH; nullopt when the object has none to use.
const std::optional<std::string>& MuslLoader::fixup_rpath(int l) {
  Dso& d = list_[static_cast<std::size_t>(l)];
  if (d.rpath) return *d.rpath;
  d.rpath.emplace();
  if (!d.file.rpath_orig) return *d.rpath;
  const std::string& orig = *d.file.rpath_orig;
  if (orig.find('$') == std::string::npos) return *d.rpath = orig;
  for (std::size_t t = orig.find('$'); t != std::string::npos; t = orig.find('$', t + 1))
    if (orig.compare(t, 7, "$ORIGIN") != 0 && orig.compare(t, 9, "${ORIGIN}") != 0) return *d.rpath;
  std::string origin;
  if (d.kernel_mapped) {
    // readlink("/proc/self/exe"): the resolved program; none in secure mode.
    if (req_.secure) return *d.rpath;
    char real[PATH_MAX];
    std::string full = req_.program;
    if (::realpath(full.c_str(), real) == nullptr) {
      // relative to the request's cwd
      std::string at = req_.cwd.empty() ? full : req_.cwd + "/" + full;
      if (full[0] == '/' || ::realpath(at.c_str(), real) == nullptr) return *d.rpath;
    }
    origin = real;
    if (origin.size() >= kBufSize) return *d.rpath;
  } else {
    origin = d.name;
  }
  const auto slash = origin.rfind('/');
  origin = slash == std::string::npos ? "." : origin.substr(0, slash);
  if (req_.secure && origin[0] != '/') return *d.rpath;
  std::string out;
  std::size_t s = 0;
  for (std::size_t t = orig.find('$'); t != std::string::npos; t = orig.find('$', s)) {
    out += orig.substr(s, t - s) + origin;
    s = t + 7 + (orig[t + 1] == '{' ? 2 : 0);
  }
  out += orig.substr(s);
  return *d.rpath = out;
}

// load_library()'s path file: PREFIX/etc/ld-musl-ARCH.path, read once; an
// open error other than ENOENT (or a read error) means an empty path.
void MuslLoader::read_sys_path() {
  if (sys_path_) return;
  std::string prefix;
  if (!ldso_name_.empty() && ldso_name_[0] == '/') {
    std::size_t t = 0, z = 0;
    for (std::size_t s = 0; s < ldso_name_.size(); ++s)
      if (ldso_name_[s] == '/') z = t, t = s;
    if (z < PATH_MAX) prefix = ldso_name_.substr(0, z);
  }
  const std::string file = prefix + "/etc/ld-musl-" + kArch + ".path";
  const UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd) {
    struct stat st {};
    const std::uint64_t n = ::fstat(fd.get(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
    std::string text(static_cast<std::size_t>(std::min<std::uint64_t>(n, 1 << 20)), '\0');
    std::size_t got = 0;
    bool bad = false;
    while (got < text.size()) {
      const ssize_t r = ::read(fd.get(), text.data() + got, text.size() - got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        errno_ = errno;
        bad = true;
        break;
      }
      if (r == 0) break;  // read_loop() stops at EOF and keeps the zero fill
      got += static_cast<std::size_t>(r);
    }
    text.resize(bad ? 0 : std::strlen(text.c_str()));
    sys_path_ = text;
    p_.system_path_from = file + (bad ? " (unreadable: an empty path)" : "");
  } else {
    errno_ = errno;
    if (errno != ENOENT) {
      sys_path_ = "";
      p_.system_path_from = file + " (cannot be opened: " + errno_name(errno_) + ", an empty path)";
    } else {
      sys_path_ = kDefaultSysPath;
      p_.system_path_from = "musl's built-in default (no " + file + ")";
    }
  }
  p_.system_path = elements(*sys_path_, ":\n");
}

// load_library(NAME, NEEDED_BY): the index of the object in the list, or -1
// (errno_ says why).
int MuslLoader::load_library(const std::string& name, int needed_by) {
  tried_.clear();
  if (name.empty()) {
    errno_ = EINVAL;
    return -1;
  }
  bool is_self = false;
  if (name.rfind("lib", 0) == 0) {
    static const char* const kReserved[] = {"c.", "pthread.", "rt.", "m.", "dl.", "util.", "xnet."};
    for (unsigned k = 0; k < std::size(kReserved); ++k) {
      if (name.compare(3, std::strlen(kReserved[k]), kReserved[k]) != 0) continue;
      // ldd mode prints each reserved name once; the prediction lists it the same way in either mode.
      if (!(reported_ & (1u << k))) {
        reported_ |= 1u << k;
        report(name, ldso_name_, FoundBy::interpreter, "musl's libc is its loader", needed_by);
      }
      is_self = true;
      break;
    }
  }
  if (name == ldso_name_) is_self = true;
  if (is_self) {
    if (ldso_ < 0) {
      Dso self;
      self.name = ldso_name_;
      self.shortname = "libc.so";
      self.is_ldso = true;
      list_.push_back(std::move(self));
      ldso_ = static_cast<int>(list_.size()) - 1;
    }
    return ldso_;
  }
  Opened o;
  found_via_.clear();
  if (name.find('/') != std::string::npos) {
    o = open_candidate(name);
    tried_.push_back(name);
    found_by_ = FoundBy::slash_name;
  } else {
    for (std::size_t i = 1; i < list_.size(); ++i)
      if (list_[i].shortname && *list_[i].shortname == name) return static_cast<int>(i);
    if (name.size() > NAME_MAX) return -1;
    if (env_path_) o = path_open(name, *env_path_, FoundBy::ld_library_path, "LD_LIBRARY_PATH");
    for (int l = needed_by; o.fd == -1 && l >= 0; l = list_[static_cast<std::size_t>(l)].needed_by) {
      const auto& rp = fixup_rpath(l);
      if (rp) {
        const Dso& d = list_[static_cast<std::size_t>(l)];
        o = path_open(name, *rp, d.file.runpath ? FoundBy::runpath : FoundBy::rpath,
                      std::string(d.file.runpath ? "DT_RUNPATH" : "DT_RPATH") + " of " + d.name);
      }
    }
    if (o.fd == -1) {
      read_sys_path();
      o = path_open(name, *sys_path_, FoundBy::default_dirs, p_.system_path_from);
    }
  }
  if (preloading_) found_via_ = "LD_PRELOAD" + (found_via_.empty() ? "" : ", " + found_via_);
  if (preloading_) found_by_ = FoundBy::preload_env;
  if (o.fd < 0) return -1;
  const UniqueFd fd(o.fd);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    errno_ = errno;
    return -1;
  }
  for (std::size_t i = 1; i < list_.size(); ++i) {
    Dso& d = list_[i];
    if (!d.is_ldso && d.dev == st.st_dev && d.ino == st.st_ino) {
      if (!d.shortname && o.path != name) d.shortname = d.name.substr(d.name.rfind('/') + 1);
      return static_cast<int>(i);
    }
  }
  MuslFile f;
  auto bytes = musl_read_all(fd.get(), static_cast<std::uint64_t>(S_ISREG(st.st_mode) ? st.st_size : 0));
  if (!bytes) {
    errno_ = bytes.error().err;
    return -1;
  }
  if ((f.map_errno = musl_map_check(*bytes)) != 0) {
    errno_ = f.map_errno;
    return -1;
  }
  read_dynamic(*bytes, f);
  if (!f.problem.empty()) p_.warnings.push_back(o.path + ": " + f.problem + " (its dependencies are not modelled)");
  if (f.other_libc) {
    p_.warnings.push_back(o.path + " defines __libc_start_main and stdin (another libc): musl loads itself instead");
    return load_library("libc.so", needed_by);
  }
  Dso d;
  d.name = o.path;
  d.dev = st.st_dev;
  d.ino = st.st_ino;
  d.needed_by = needed_by;
  if (o.path != name) d.shortname = o.path.substr(o.path.rfind('/') + 1);
  d.file = std::move(f);
  list_.push_back(std::move(d));
  report(name, o.path, found_by_, found_via_, needed_by);
  return static_cast<int>(list_.size()) - 1;
}

// The loader's own symbols (musl's libc), read once per version of its file.
std::shared_ptr<const MuslSymbols> loader_symbols(const std::string& path) {
  static std::mutex m;
  static std::map<std::tuple<dev_t, ino_t, std::int64_t, std::int64_t>, std::shared_ptr<const MuslSymbols>> known;
  struct stat st {};
  auto bytes = read_object_bytes(path, &st);
  if (!bytes) return nullptr;
  const auto key = std::make_tuple(st.st_dev, st.st_ino, static_cast<std::int64_t>(st.st_mtim.tv_sec),
                                   static_cast<std::int64_t>(st.st_mtim.tv_nsec));
  const std::lock_guard lock(m);
  auto& slot = known[key];
  if (!slot) slot = std::make_shared<const MuslSymbols>(MuslSymbols::read(*bytes));
  return slot;
}

// __dls3()'s reloc_all(app.next), reloc_all(&app) over the list as loaded:
// the first line is the error (unless a load failed before), the others
// are printed after it.
void MuslLoader::relocate() {
  std::shared_ptr<const MuslSymbols> self;
  if (ldso_ >= 0) {
    // The loader that runs: the one invoked (ldd mode), else PT_INTERP.
    const std::string& file = ldd_mode_ ? req_.explicit_loader : ldso_name_;
    self = loader_symbols(file);
    if (!self) p_.warnings.push_back(file + " cannot be read: what musl's libc defines is not known");
    else if (!self->problem.empty()) p_.warnings.push_back(file + ": " + self->problem);
  }
  std::vector<MuslRelocObject> objects;
  for (const Dso& d : list_) objects.push_back({d.name, d.is_ldso ? self.get() : &d.file.symbols, d.is_ldso});
  if (ldso_ >= 0 && !self) return;  // every libc reference would look missing
  for (const Dso& d : list_)
    if (!d.is_ldso && !d.file.symbols.problem.empty())
      p_.warnings.push_back(d.name + ": " + d.file.symbols.problem + " (its relocations are modelled in part)");
  for (auto& e : musl_relocation_errors(objects))
    note({std::move(e.object), std::move(e.message), LoaderError::Stage::musl_relocating});
}

void MuslLoader::finish() {
  if (ldso_ >= 0) return;
  // Nothing named libc: the program does not use the loader's libc (a
  // program linked with -nostdlib); the loader still runs it.
  p_.warnings.emplace_back("nothing needs musl's libc: the loader maps the program's own objects only");
}

// musl's version, as the loader prints it when run with no program ("musl
// libc (x86_64)\nVersion 1.2.3\n..." on stderr), asked once per loader. Only
// a system loader is run (root's, not writable by others, under /lib or
// /usr/lib), as the glibc model runs only the system's ld.so: never a file a
// program's PT_INTERP merely names.
std::string musl_version(const std::string& loader) {
  static std::mutex m;
  static std::map<std::string, std::string> known;
  char real[PATH_MAX];
  if (loader.empty() || ::realpath(loader.c_str(), real) == nullptr) return "";
  const std::string path = real;
  const std::lock_guard lock(m);
  auto it = known.find(path);
  if (it != known.end()) return it->second;
  std::string v;
  struct stat st {};
  const bool system_dir = path.rfind("/lib/", 0) == 0 || path.rfind("/usr/lib/", 0) == 0 ||
                          path.rfind("/lib64/", 0) == 0 || path.rfind("/usr/lib64/", 0) == 0;
  if (system_dir && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == 0 &&
      (st.st_mode & 022) == 0 && (st.st_mode & 0111) != 0) {
    const std::string text = run_and_read(path, "", STDERR_FILENO, /*need_success=*/false);
    const auto at = text.find("Version ");
    if (text.rfind("musl libc", 0) == 0 && at != std::string::npos)
      v = text.substr(at + 8, text.find('\n', at) - at - 8);
  }
  return known[path] = v;
}

}  // namespace

Result<Prediction> resolve_musl(const Request& req, const SystemInfo& /*sys*/) {
  Prediction p;
  p.kind = LoaderKind::musl;
  UniqueFd dir;
  if (!req.cwd.empty()) {
    dir.reset(::open(req.cwd.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return Error(errno, "opening the working directory " + req.cwd + ": " + errno_name(errno));
  }
  MuslLoader loader(req, dir ? dir.get() : AT_FDCWD, p);
  if (auto s = loader.start(); !s) return s.error();
  // __dls3(): preloads, then the breadth-first walk; the vDSO is attached
  // after, outside the list ldd prints.
  loader.load_preloads();
  loader.load_deps();
  loader.relocate();
  loader.finish();
  p.loader_version =
      musl_version(req.explicit_loader.empty() ? p.objects.front().path.value_or("") : req.explicit_loader);
  return p;
}

}  // namespace detail

}  // namespace procforge::ldso
