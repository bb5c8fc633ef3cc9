// Everything of a user-space exec up to the point of no return, in the order
// the kernel decides it: the exec model predicts the chain, the checks and
// the layout with our own random draws; then the files are opened, the
// initial stack is built byte for byte, and the stub's op table is written:
// unmap the old image, map the new one (fs/binfmt_elf.c elf_load()), zero the
// bss tails (padzero()), copy the stack (create_elf_tables()), set the mm
// fields (prctl PR_SET_MM_MAP), comm, fs/gs bases, robust list, clear_child_tid
// and the signal mask, then jump.
#include <elf.h>
#include <fcntl.h>
#include <linux/prctl.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>
#include <utility>

#include "procforge/format.hpp"
#include "user_exec/impl.hpp"

namespace procforge::user_exec {

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kXsaveSize = 16384;  // ample for any XSAVE layout (AMX included)
constexpr std::size_t kDentsSize = 16384;

struct Range {
  std::uint64_t start, end;
};

bool clashes(std::uint64_t lo, std::size_t size, const std::vector<Range>& ranges) {
  return std::any_of(ranges.begin(), ranges.end(), [&](const Range& r) { return r.start < lo + size && lo < r.end; });
}

// One spare region per process. A new region at a new random address costs
// the mmap, the page-table pages for a distant address, a fault per page
// written, and at the end the munmap that frees them all again; the next
// prepare() takes the spare when it is big enough and clear of the new
// image. Its data pages hold nothing that prepare() does not rewrite, except
// the XSAVE area and the zero word, which nothing else ever writes.
//
// The slot is one atomic word, base | pages (the base is page aligned and the
// size at most kRegionMax), so that it takes no lock: a fork() while another
// thread held one would leave it held for ever in the child.
std::atomic<std::uint64_t> spare{0};

// kRegionMin: most images fit, so the spare fits the next one too.
constexpr std::size_t kRegionMin = 128 * 1024;
constexpr std::size_t kRegionMax = 2 * 1024 * 1024;  // larger regions are not kept
static_assert(kRegionMax / kPage < kPage, "the page count must fit below the page-aligned base");

void* take_spare_region(std::size_t& size, const std::vector<Range>& avoid) {
  const std::uint64_t slot = spare.exchange(0);
  if (!slot) return nullptr;
  void* base = reinterpret_cast<void*>(slot & ~(kPage - 1));
  const std::size_t have = (slot & (kPage - 1)) * kPage;
  if (have < size || clashes(reinterpret_cast<std::uint64_t>(base), have, avoid)) {
    munmap(base, have);
    return nullptr;
  }
  size = have;
  return base;
}

// What the new image must not inherit: the whole user address space except
// the vDSO (kept for the new image) and [vsyscall] (cannot be unmapped). One
// munmap() per gap between kept areas: munmap() accepts holes, and the kernel
// drops the old mm in one piece too (exec_mmap()).
std::vector<Range> old_mappings(std::uint64_t task_size, const exec::SystemFacts& facts) {
  std::vector<Range> keep;
  if (const std::uint64_t vdso = getauxval(AT_SYSINFO_EHDR))
    keep.push_back({vdso - facts.vvar_size, vdso + facts.vdso_size});  // [vvar...] then [vdso]
  std::vector<Range> out;
  std::uint64_t from = kPage;  // nothing can be mapped below vm.mmap_min_addr anyway
  for (const auto& k : keep) {
    if (k.start > from) out.push_back({from, k.start});
    from = std::max(from, k.end);
  }
  if (task_size > from) out.push_back({from, task_size});
  return out;
}

// The top of this process's mmap area. The kernel put the first top-down
// mapping of the exec (our dynamic linker, else the vDSO) right below it, and
// later mmap(NULL) calls of the new image will allocate below it too, so the
// new image is laid out against it (user space cannot move it).
std::optional<std::uint64_t> own_mmap_base() {
  const std::uint64_t at_base = getauxval(AT_BASE);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  std::string interp_id;
  std::uint64_t best = 0, vdso_end = 0;
  while (std::getline(maps, line)) {
    unsigned long long lo = 0, hi = 0, ino = 0;
    char dev[32] = {}, name[256] = {};
    if (sscanf(line.c_str(), "%llx-%llx %*s %*s %31s %llu %255s", &lo, &hi, dev, &ino, name) < 4) continue;
    const std::string id = std::string(dev) + ":" + std::to_string(ino);
    if (at_base && lo == at_base) interp_id = id;
    if (!interp_id.empty() && id == interp_id) best = std::max<std::uint64_t>(best, hi);
    if (std::string(name) == "[vdso]") vdso_end = hi;
  }
  if (best) return best;
  if (vdso_end) return vdso_end;
  return std::nullopt;
}

// The mappings of this process's vDSO ([vvar], [vvar_vclock], [vdso]): one
// mremap() moves one mapping only.
std::vector<Range> vdso_mappings(std::uint64_t lo, std::uint64_t hi) {
  std::vector<Range> out;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long long start = 0, end = 0;
    if (sscanf(line.c_str(), "%llx-%llx", &start, &end) == 2 && start >= lo && end <= hi) out.push_back({start, end});
  }
  return out;
}

bool killed_in_exec(const exec::Prediction& p) {
  return p.outcome == exec::Outcome::killed && !p.killed_at_first_instruction;
}

// ETXTBSY, asked of the kernel itself: execve() opens the file (and refuses
// one open for writing) before it reads argv, so a bad argv pointer makes it
// fail with EFAULT right after the open checks, long before the point of no
// return (fs/exec.c do_execveat_common(): alloc_bprm(), then count(argv)).
// Cheaper and more exact than rebuilding i_writecount from /proc.
int kernel_open_check(const std::string& path) {
  long r = syscall(SYS_execve, path.c_str(), reinterpret_cast<char* const*>(-1L), nullptr);
  return r < 0 ? errno : 0;
}

int count_threads() {
  int n = 0;
  std::ifstream st("/proc/self/status");
  std::string key;
  while (st >> key) {
    if (key == "Threads:") {
      st >> n;
      break;
    }
    std::getline(st, key);
  }
  return n;
}

// fd itself when it is at or above floor, else a close-on-exec copy there
// (the original closed); -1 with errno when that fails.
int above_floor(int fd, int floor) {
  if (fd < 0 || fd >= floor) return fd;
  const int moved = fcntl(fd, F_DUPFD_CLOEXEC, floor);
  const int err = errno;
  close(fd);
  errno = err;
  return moved;
}

Op syscall_op(std::uint64_t kind, long nr, std::initializer_list<std::uint64_t> args) {
  Op op;
  op.kind = kind;
  op.nr = static_cast<std::uint64_t>(nr);
  std::size_t i = 0;
  for (auto a : args) op.a[i++] = a;
  return op;
}

}  // namespace

void release_region(Region& r) {
  if (!r.base) return;
  void* base = std::exchange(r.base, nullptr);
  const std::size_t size = std::exchange(r.size, 0);
  std::uint64_t empty = 0;
  if (size <= kRegionMax &&
      spare.compare_exchange_strong(empty, reinterpret_cast<std::uint64_t>(base) | (size / kPage)))
    return;
  munmap(base, size);
}

Result<Prepared> prepare(const Options& opts) {
  Prepared out;
  auto& im = *out.impl_;
  // The steps in words cost a few hundred allocations; they are only made
  // for someone who reads them.
  const bool tracing = opts.record_steps || opts.on_step;
  auto step = [&](std::string stage, std::string detail) {
    im.steps.push_back({std::move(stage), std::move(detail)});
    if (opts.on_step) opts.on_step(im.steps.back());
  };

  if (!opts.for_child && count_threads() > 1)
    return Error(EBUSY,
                 "user-space exec: this process has other threads; the kernel's exec would kill them "
                 "(de_thread()), user space cannot: run it in a fresh child (procforge run --loader=user)");

  // 1. The kernel's exec model, with our dice: every address exact.
  exec::Request req = opts.request;
  exec::Dice dice = exec::Dice::roll();
  dice.vdso_base = getauxval(AT_SYSINFO_EHDR);                            // the vDSO stays where it is
  static const std::optional<std::uint64_t> mmap_base = own_mmap_base();  // fixed for the process's life
  dice.mmap_base = mmap_base;                                             // and so does the mmap area
  // ETXTBSY is checked below by the kernel; skip the /proc scan.
  static const exec::OpenWriters no_writers;
  req.writers = &no_writers;
  req.dice = dice;
  req.addr_no_randomize = req.addr_no_randomize || !opts.randomize;
  req.want_stack_image = true;
  req.explain = opts.keep_prediction || tracing;
  // The kernel's facts do not change while we run; whether binfmt_misc is
  // mounted (here, in this mount namespace) can.
  static const exec::SystemFacts kernel_facts = exec::SystemFacts::probe();
  exec::SystemFacts facts = kernel_facts;
  facts.binfmt_misc_mounted = access((facts.binfmt_misc_dir + "/register").c_str(), F_OK) == 0;
  // The files the model examined, duplicated for mapping: the very files
  // the kernel would map, not a second open of their paths. From here they
  // belong to the Prepared (closed by its destructor, or by the stub).
  std::vector<std::pair<std::string, int>> model_files;
  req.mapped_files = &model_files;
  auto pred = exec::predict(req, facts);
  // The kernel maps the new vDSO only after the image (load_elf_binary():
  // ARCH_SETUP_ADDITIONAL_PAGES after the PT_LOAD loop), so the image may
  // take the place where this process's vDSO lies: a static PIE with
  // p_align above the page size is mapped top-down and its address then
  // rounded down to that alignment, which can land on the vDSO's pages below
  // the mmap base. The model, told the vDSO stays, then predicts a collision
  // the kernel never has. If the image dies in exec with the vDSO kept and
  // not without it, take the prediction without it (the vDSO where the
  // kernel maps it) and move the vDSO there (mremap(); the kernel's
  // vdso_mremap() follows the move).
  std::optional<std::uint64_t> moved_vdso;
  std::vector<Range> vdso_pieces;
  if (pred && killed_in_exec(*pred) && dice.vdso_base) {
    exec::Request moved = req;
    moved.dice->vdso_base.reset();
    std::vector<std::pair<std::string, int>> moved_files;
    moved.mapped_files = &moved_files;
    auto alt = exec::predict(moved, facts);
    std::optional<std::uint64_t> at;
    if (alt && !killed_in_exec(*alt) && alt->plan)
      for (const auto& a : alt->plan->auxv)
        if (a.type == AT_SYSINFO_EHDR) at = a.value;
    auto& unused = at ? model_files : moved_files;
    for (const auto& f : unused) close(f.second);
    if (at) {
      model_files = std::move(moved_files);
      pred = std::move(alt);
      moved_vdso = at;
      vdso_pieces = vdso_mappings(*dice.vdso_base - facts.vvar_size, *dice.vdso_base + facts.vdso_size);
    }
  }
  std::map<std::string, int> fds;
  for (auto [path, fd] : model_files) {
    fd = above_floor(fd, opts.descriptor_floor);
    if (fd < 0) continue;  // step 2 opens it again, and names the error
    im.fds.push_back(fd);
    fds.emplace(path, fd);
  }
  if (!pred) return pred.error();
  im.pred = std::move(*pred);
  const exec::Prediction& p = im.pred;
  for (const auto& c : p.chain) {
    if (tracing)
      step("dispatch",
           c.path + (c.kind == exec::LinkKind::script ? " is a #! script: interpreter " + c.interpreter.value_or("") +
                                                            (c.arg ? " arg \"" + *c.arg + "\"" : "")
                     : c.kind == exec::LinkKind::misc
                         ? " matches binfmt_misc " + c.misc_entry + ": " + c.interpreter.value_or("")
                         : " is ELF" + (c.interpreter ? ", PT_INTERP " + *c.interpreter : std::string(", static"))));
  }
  if (p.outcome == exec::Outcome::error)
    return Error(p.err, "execve " + req.path + ": " + errno_name(p.err) + " (" + p.diagnosis + ")");
  // Every file the kernel would open for exec, in its order: the chain, then PT_INTERP.
  std::vector<std::string> opened;
  for (const auto& c : p.chain) {
    opened.push_back(c.path);
    if (c.kind == exec::LinkKind::elf && c.interpreter) opened.push_back(*c.interpreter);
  }
  for (const auto& f : opened) {
    if (kernel_open_check(f) == ETXTBSY)
      return Error(ETXTBSY, "execve " + req.path + ": ETXTBSY (" + f + " is open for writing by some process)");
  }
  if (!p.plan) return Error(ENOEXEC, "execve " + req.path + ": no image to load");
  const exec::Plan& plan = *p.plan;
  if (p.elf_header && !p.elf_header->is64)
    return Error(EOPNOTSUPP, "user-space exec of " + plan.exe + ": 32-bit (ia32) images are not supported");
  const bool dies_in_exec = killed_in_exec(p);
  const bool all_known = std::all_of(plan.mappings.begin(), plan.mappings.end(),
                                     [](const exec::Mapping& m) { return m.address_known || m.object == "[heap]"; });
  if (!dies_in_exec && (!plan.rsp || plan.stack_tables.empty() || !all_known || !plan.entry))
    return Error(EINVAL, "user-space exec of " + plan.exe + ": the layout is not fully known");

  // 2. Every file that gets mapped has its descriptor (paths as the kernel
  // named them); one the model did not hand over is opened here.
  const std::string cwd = req.cwd;
  for (const auto& m : plan.mappings) {
    if (!m.file_backed || fds.count(m.object)) continue;
    std::string path = m.object[0] == '/' || cwd.empty() ? m.object : cwd + "/" + m.object;
    int fd = above_floor(open(path.c_str(), O_RDONLY | O_CLOEXEC), opts.descriptor_floor);
    if (fd < 0) {
      int e = errno;
      return Error(e,
                   "user-space exec: opening " + m.object + " to map it: " + errno_name(e) +
                       (e == EACCES ? " (the kernel maps files it may only execute; user space must read them)" : ""));
    }
    im.fds.push_back(fd);
    fds[m.object] = fd;
  }

  // 3. The new image's ranges; the stub region must avoid all of them.
  std::vector<Range> new_ranges;
  for (const auto& m : plan.mappings)
    if (m.address_known && m.end > m.start) new_ranges.push_back({m.start, m.end});
  new_ranges.push_back({plan.stack_vma_start, plan.stack_top});
  if (plan.brk) new_ranges.push_back({*plan.brk, *plan.brk + (64ull << 20)});  // leave the heap room to grow

  const std::vector<Range> old = old_mappings((1ull << 47) - kPage, facts);  // TASK_SIZE, 4-level paging
  // The ops counted here, plus 32 for the fixed ones (copies, mm fields,
  // identity, closes, resets, the end), about 20 today.
  const std::size_t n_ops =
      old.size() + plan.mappings.size() + plan.zero_ranges.size() + im.fds.size() + 2 * vdso_pieces.size() + 32;
  std::size_t size = kPage;  // code
  // What this prepare() writes comes first, right after the code page, so
  // that it spans few pages: after a fork() in the caller, each page written
  // costs a copy-on-write fault. The XSAVE area and the dents buffer (written
  // by the child alone) go last, at offsets from the region's end that stay
  // the same for as long as the region lives: the XSAVE area is written once.
  std::size_t off_header = size;  // zero word, saved mask
  std::size_t off_keep = off_header + 64;
  std::size_t off_mm = off_keep + 64 * sizeof(int);
  std::size_t off_mm_exe = off_mm + sizeof(MmMap);
  std::size_t off_comm = off_mm_exe + sizeof(MmMap);
  std::size_t off_groups = off_comm + 16;
  std::size_t off_auxv =
      (off_groups + sizeof(gid_t) * (opts.become_groups ? opts.become_groups->size() : 0) + 15) & ~std::size_t{15};
  std::size_t off_ops = (off_auxv + plan.auxv.size() * 16 + 63) & ~std::size_t{63};
  std::size_t off_stack = off_ops + n_ops * sizeof(Op);
  const std::size_t off_strings = off_stack + plan.stack_tables.size();
  size = std::max((off_strings + plan.stack_strings.size() + kXsaveSize + kDentsSize + kPage - 1) & ~(kPage - 1),
                  kRegionMin);

  // A region a previous Prepared left (see release_region()), else a new one.
  void* base = take_spare_region(size, new_ranges);
  const bool reused = base != nullptr;
  if (!base) base = MAP_FAILED;
  for (int attempt = 0; attempt < 64 && base == MAP_FAILED; ++attempt) {
    // A random place between 4 GiB and 80 TiB: below PIE images (ELF_ET_DYN_BASE
    // ~85 TiB) and far from the mmap area, so that the hole its data pages
    // leave never changes where the new program's own mmap() calls land.
    std::uint64_t draw = 0;
    (void)getrandom(&draw, sizeof draw, 0);
    void* hint = reinterpret_cast<void*>(0x100000000ull + (draw % 0x4ff000000000ull & ~(kPage - 1)));
    void* a = mmap(hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (a == MAP_FAILED) continue;
    if (clashes(reinterpret_cast<std::uint64_t>(a), size, new_ranges)) munmap(a, size);
    else base = a;
  }
  if (base == MAP_FAILED) return Error(ENOMEM, "user-space exec: no room for the stub outside the new image");
  Region& R = im.region;
  R.base = static_cast<std::uint8_t*>(base);
  R.size = size;
  R.code = R.base;
  R.zero_word = reinterpret_cast<std::uint64_t*>(R.base + off_header);
  R.saved_mask = R.zero_word + 1;
  R.xsave = R.base + size - kDentsSize - kXsaveSize;  // size: the region's, which may be a larger spare
  R.dents = R.base + size - kDentsSize;
  R.dents_size = kDentsSize;
  R.keep_fds = reinterpret_cast<int*>(R.base + off_keep);
  R.keep_count = std::min<std::size_t>(im.fds.size(), 64);
  std::copy_n(im.fds.begin(), R.keep_count, R.keep_fds);
  R.ops = reinterpret_cast<Op*>(R.base + off_ops);
  // XSAVE legacy area: MXCSR (offset 24) = 0x1f80, its mask (28) = all; header XSTATE_BV = 0.
  const std::uint32_t mxcsr = 0x1f80, mxcsr_mask = 0xffff;
  if (std::memcmp(R.xsave + 24, &mxcsr, 4) != 0) std::memcpy(R.xsave + 24, &mxcsr, 4);  // a new region
  if (std::memcmp(R.xsave + 28, &mxcsr_mask, 4) != 0) std::memcpy(R.xsave + 28, &mxcsr_mask, 4);

  // 4. The op table.
  std::vector<Op> ops;
  const auto self_lo = reinterpret_cast<std::uint64_t>(R.base), self_hi = self_lo + size;
  for (const auto& r : old) {
    // Everything but the stub region.
    if (r.end <= self_lo || r.start >= self_hi) {
      ops.push_back(syscall_op(kOpSyscall, SYS_munmap, {r.start, r.end - r.start}));
    } else {
      if (r.start < self_lo) ops.push_back(syscall_op(kOpSyscall, SYS_munmap, {r.start, self_lo - r.start}));
      if (r.end > self_hi) ops.push_back(syscall_op(kOpSyscall, SYS_munmap, {self_hi, r.end - self_hi}));
    }
  }
  if (tracing)
    step("unmap", "everything of the old image (program, libraries, heap, stack) in " + std::to_string(ops.size()) +
                      " munmap calls; the vDSO stays");
  if (moved_vdso) {
    // Through a spot next to the stub region (free once the old image is
    // unmapped), since mremap() refuses overlapping source and target.
    const std::uint64_t from = *dice.vdso_base - facts.vvar_size, to = *moved_vdso - facts.vvar_size;
    const std::uint64_t span = facts.vvar_size + facts.vdso_size;
    const std::vector<Range> vdso_places{{from, from + span}, {to, to + span}};
    const std::uint64_t spot = clashes(self_hi, span, vdso_places) ? self_lo - span : self_hi;
    for (const std::uint64_t dst : {spot, to}) {
      const std::uint64_t src = dst == spot ? from : spot;
      for (const auto& v : vdso_pieces)
        ops.push_back(syscall_op(kOpSyscall, SYS_mremap,
                                 {src + (v.start - from), v.end - v.start, v.end - v.start,
                                  MREMAP_MAYMOVE | MREMAP_FIXED, dst + (v.start - from)}));
    }
    if (tracing)
      step("vdso", "move the vDSO from " + hex(*dice.vdso_base) + " to " + hex(*moved_vdso) +
                       ": the new image is mapped where it is (the kernel maps the vDSO after the image)");
  }

  if (dies_in_exec) {
    // After the point of no return the kernel kills the task: so do we.
    ops.push_back(syscall_op(kOpSyscall, -1, {}));
    if (tracing) step("killed", p.diagnosis);
  } else {
    for (const auto& m : plan.mappings) {
      if (m.end <= m.start || m.object.rfind("[vvar", 0) == 0 || m.object == "[vdso]" || m.object == "[heap]") continue;
      const std::uint64_t len = m.end - m.start;
      if (m.file_backed) {
        ops.push_back(syscall_op(kOpSyscall, SYS_mmap,
                                 {m.start, len, static_cast<std::uint64_t>(m.prot), MAP_PRIVATE | MAP_FIXED,
                                  static_cast<std::uint64_t>(fds[m.object]), m.file_offset}));
      } else {
        const std::uint64_t flags =
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | (m.object == "[stack]" ? MAP_GROWSDOWN : 0);
        ops.push_back(
            syscall_op(kOpSyscall, SYS_mmap,
                       {m.start, len, static_cast<std::uint64_t>(m.prot), flags, static_cast<std::uint64_t>(-1), 0}));
      }
      if (tracing)
        step("map", hex(m.start) + "-" + hex(m.end) + " " + prot_string(m.prot) + " " + m.object +
                        (m.file_backed ? " @" + hex(m.file_offset) : "") + (m.note.empty() ? "" : " (" + m.note + ")"));
    }
    for (const auto& [start, len] : plan.zero_ranges) {
      Op z;
      z.kind = kOpZero;
      z.nr = 0;
      z.a[0] = start;
      z.a[1] = len;
      ops.push_back(z);
      if (tracing)
        step("bss", "zero " + std::to_string(len) + " bytes at " + hex(start) + " (tail of the last file page)");
    }
    // The initial stack, byte for byte, in the kernel's two pieces (the gap
    // between them stays untouched, as under the kernel).
    std::memcpy(R.base + off_stack, plan.stack_tables.data(), plan.stack_tables.size());
    std::memcpy(R.base + off_strings, plan.stack_strings.data(), plan.stack_strings.size());
    for (const auto& [to, from, len] : {std::tuple{*plan.rsp, off_stack, plan.stack_tables.size()},
                                        std::tuple{plan.stack_strings_start, off_strings, plan.stack_strings.size()}}) {
      Op c;
      c.kind = kOpCopy;
      c.a[0] = to;
      c.a[1] = reinterpret_cast<std::uint64_t>(R.base + from);
      c.a[2] = len;
      ops.push_back(c);
    }
    if (tracing) {
      for (const auto& l : plan.stack_layout) step("stack", l);
      for (const auto& a : plan.auxv)
        step("auxv", a.name + " = " + (a.value ? hex(*a.value) : std::string("?")) +
                         (a.describe.empty() ? "" : "  " + a.describe));
    }

    // mm fields: what /proc/PID/{exe,cmdline,environ,auxv} and brk() see.
    auto* mm = reinterpret_cast<MmMap*>(R.base + off_mm);
    auto* auxv = reinterpret_cast<std::uint64_t*>(R.base + off_auxv);
    for (std::size_t i = 0; i < plan.auxv.size(); ++i) {
      auxv[2 * i] = plan.auxv[i].type;
      auxv[2 * i + 1] = plan.auxv[i].value.value_or(0);
    }
    *mm = MmMap{plan.start_code,
                plan.end_code,
                plan.start_data,
                plan.end_data,
                plan.brk.value_or(0),
                plan.brk.value_or(0),
                *plan.rsp,
                plan.arg_start,
                plan.arg_end,
                plan.env_start,
                plan.env_end,
                reinterpret_cast<std::uint64_t>(auxv),
                static_cast<std::uint32_t>(plan.auxv.size() * 16),
                static_cast<std::uint32_t>(fds.count(plan.exe) ? fds[plan.exe] : -1)};
    // PR_SET_MM_MAP needs no capability, except for the exe link
    // (checkpoint_restore_ns_capable(): CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE),
    // so set the fields first and the exe link in a second call.
    if (opts.set_mm) {
      const std::uint32_t exe_fd = mm->exe_fd;
      mm->exe_fd = static_cast<std::uint32_t>(-1);
      auto* mm_exe = reinterpret_cast<MmMap*>(R.base + off_mm_exe);
      *mm_exe = *mm;
      mm_exe->exe_fd = exe_fd;
      ops.push_back(syscall_op(kOpSyscallIgnore, SYS_prctl,
                               {PR_SET_MM, PR_SET_MM_MAP, reinterpret_cast<std::uint64_t>(mm), sizeof(MmMap), 0}));
      // The capability of whoever enters: the caller when the identity changes
      // only at the end (become_*), else the identity of the request.
      const bool late_ids = opts.become_uid || opts.become_gid || opts.become_groups;
      const exec::Credentials who = late_ids ? exec::Credentials::current() : req.creds;
      if (who.cap_sys_admin || who.cap_checkpoint_restore)
        ops.push_back(
            syscall_op(kOpSyscallIgnore, SYS_prctl,
                       {PR_SET_MM, PR_SET_MM_MAP, reinterpret_cast<std::uint64_t>(mm_exe), sizeof(MmMap), 0}));
      else
        im.differences.push_back(
            "no CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE: /proc/PID/exe keeps pointing at the old program");
    } else {
      im.differences.push_back(
          "--no-set-mm: /proc/PID/exe, cmdline, environ and auxv keep the old process's values and "
          "brk() starts from the old heap");
    }
    // comm = basename of the execve path, 15 bytes (__set_task_comm(kbasename(bprm->filename))).
    std::string base_name = req.path.substr(req.path.rfind('/') == std::string::npos ? 0 : req.path.rfind('/') + 1);
    std::strncpy(reinterpret_cast<char*>(R.base + off_comm), base_name.c_str(), 15);
    ops.push_back(
        syscall_op(kOpSyscallIgnore, SYS_prctl, {PR_SET_NAME, reinterpret_cast<std::uint64_t>(R.base + off_comm)}));
    // The identity to end with (Options::become_*), raw system calls: they
    // must succeed, or the process dies as after any failure past this point.
    if (opts.become_groups) {
      auto* g = reinterpret_cast<gid_t*>(R.base + off_groups);
      std::copy(opts.become_groups->begin(), opts.become_groups->end(), g);
      ops.push_back(
          syscall_op(kOpSyscall, SYS_setgroups, {opts.become_groups->size(), reinterpret_cast<std::uint64_t>(g)}));
    }
    if (opts.become_gid)
      ops.push_back(syscall_op(kOpSyscall, SYS_setresgid, {*opts.become_gid, *opts.become_gid, *opts.become_gid}));
    if (opts.become_uid)
      ops.push_back(syscall_op(kOpSyscall, SYS_setresuid, {*opts.become_uid, *opts.become_uid, *opts.become_uid}));
    // commit_creds() made the process non-dumpable when the ids changed; exec
    // makes it dumpable again for a plain (not set-id) program
    // (begin_new_exec(): set_dumpable(SUID_DUMP_USER)).
    if (opts.become_uid || opts.become_gid)
      ops.push_back(syscall_op(kOpSyscallIgnore, SYS_prctl, {PR_SET_DUMPABLE, 1}));
    for (int fd : im.fds) ops.push_back(syscall_op(kOpSyscallIgnore, SYS_close, {static_cast<std::uint64_t>(fd)}));
    ops.push_back(syscall_op(kOpSyscallIgnore, SYS_arch_prctl, {0x1002 /* ARCH_SET_FS */, 0}));
    ops.push_back(syscall_op(kOpSyscallIgnore, SYS_arch_prctl, {0x1001 /* ARCH_SET_GS */, 0}));
    ops.push_back(syscall_op(kOpSyscallIgnore, SYS_set_robust_list, {0, 24}));
    ops.push_back(syscall_op(kOpSyscallIgnore, SYS_set_tid_address, {0}));
    ops.push_back(syscall_op(kOpRestoreMask, SYS_rt_sigprocmask, {}));  // the mask enter() found
    if (tracing)
      step("entry", "jump to " + hex(plan.entry.value_or(0)) +
                        (plan.entry_in_interp ? " (the interpreter's entry)" : "") + " with rsp " + hex(*plan.rsp) +
                        ", every other register 0, rflags 0x202, FPU reset");
  }
  if (dies_in_exec) {
    ops.push_back(Op{});
  } else {
    // The end: unmap the data pages of the stub region, keep only its code page.
    Op end;
    end.kind = kOpEndUnmap;
    end.a[0] = self_lo + kPage;
    end.a[1] = size - kPage;
    ops.push_back(end);
  }
  if (ops.size() > n_ops) return Error(E2BIG, "user-space exec: op table overflow");
  std::copy(ops.begin(), ops.end(), R.ops);

  // 5. The code page: copy the stub (a region taken again has it already),
  // patch its slots.
  // The code page stays rw- in this process: enter() makes it r-x in the
  // process that runs it, so that a region taken again is rewritten without
  // two mprotect() calls here (3.6 us) and no page is ever writable and
  // executable at once. Whether this process may make anonymous memory
  // executable at all (SELinux execmem, PaX MPROTECT) is asked once per new
  // region, so that a refusal is an error here and not a dead child.
  auto code = stub_code();
  if (!reused &&
      (mprotect(R.code, kPage, PROT_READ | PROT_EXEC) != 0 || mprotect(R.code, kPage, PROT_READ | PROT_WRITE) != 0)) {
    int e = errno;
    munmap(R.base, R.size);  // not kept as the spare: a region taken again is not asked
    R.base = nullptr;
    return Error(e, "user-space exec: making the stub executable: " + errno_name(e));
  }
  // The instructions, without the slots (the last 16 bytes), already there?
  if (std::memcmp(R.code, code.data(), stub_entry_slot()) != 0) std::memcpy(R.code, code.data(), code.size());
  const std::uint64_t entry = plan.entry.value_or(0), rsp = plan.rsp.value_or(0);
  std::memcpy(R.code + stub_entry_slot(), &entry, 8);
  std::memcpy(R.code + stub_rsp_slot(), &rsp, 8);
  im.differences.push_back("one 4 KiB page of the stub's code stays mapped r-x at " + hex(self_lo) +
                           " (the code that unmapped the old image cannot unmap itself)");
  if (moved_vdso)
    im.differences.push_back("the vDSO is moved from " + hex(*dice.vdso_base) + " to " + hex(*moved_vdso) +
                             ", where the kernel would map it after the image, instead of a new random place");
  else
    im.differences.push_back("the vDSO keeps its address (" + hex(*dice.vdso_base) + ") instead of a new random one");
  if (p.plan && p.plan->auxv.size()) {
    for (const auto& a : p.plan->auxv)
      if (a.type == AT_EUID || a.type == AT_EGID)
        if (a.value && *a.value != (a.type == AT_EUID ? geteuid() : getegid()))
          im.differences.push_back(
              "set-user-ID / set-group-ID bits are not applied: user space cannot gain privileges");
  }
  if (!opts.keep_prediction) im.pred = exec::Prediction{};
  return out;
}

}  // namespace procforge::user_exec
