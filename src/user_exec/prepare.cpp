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

#include "common/maps.hpp"
#include "exec/hooks.hpp"
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
  std::optional<std::tuple<unsigned, unsigned, std::uint64_t>> interp_id;
  std::uint64_t best = 0, vdso_end = 0;
  for_each_mapping("/proc/self/maps", [&](const MapsLine& m) {
    const auto id = std::make_tuple(m.dev_major, m.dev_minor, m.inode);
    if (at_base && m.start == at_base) interp_id = id;
    if (interp_id && id == *interp_id) best = std::max<std::uint64_t>(best, m.end);
    if (m.path == "[vdso]") vdso_end = m.end;
    return true;
  });
  if (best) return best;
  if (vdso_end) return vdso_end;
  return std::nullopt;
}

// The mappings of this process's vDSO ([vvar], [vvar_vclock], [vdso]): one
// mremap() moves one mapping only.
std::vector<Range> vdso_mappings(std::uint64_t lo, std::uint64_t hi) {
  std::vector<Range> out;
  for_each_mapping("/proc/self/maps", [&](const MapsLine& m) {
    if (m.start >= lo && m.end <= hi) out.push_back({m.start, m.end});
    return true;
  });
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
// (the original closed); invalid, with errno, when that fails.
UniqueFd above_floor(UniqueFd fd, int floor) {
  if (!fd || fd.get() >= floor) return fd;
  return UniqueFd(fcntl(fd.get(), F_DUPFD_CLOEXEC, floor));
}

Op syscall_op(std::uint64_t kind, long nr, std::initializer_list<std::uint64_t> args) {
  Op op;
  op.kind = kind;
  op.nr = static_cast<std::uint64_t>(nr);
  std::size_t i = 0;
  for (auto a : args) op.a[i++] = a;
  return op;
}

// What the stages share, as struct linux_binprm carries the kernel's exec
// from one step to the next.
struct Bprm {
  Bprm(const Options& o, detail::PreparedImpl& i) : opts(o), im(i), tracing(o.record_steps || o.on_step) {}

  const Options& opts;
  detail::PreparedImpl& im;
  // The steps in words cost a few hundred allocations; they are only made
  // for someone who reads them.
  const bool tracing;
  exec::Request req;
  exec::Dice dice;
  exec::detail::ExecHooks hooks;  // our vDSO and mmap area stay where they are
  exec::SystemFacts facts;
  std::optional<std::uint64_t> moved_vdso;  // where the vDSO goes when the image needs its place
  std::vector<Range> vdso_pieces;
  std::map<std::string, int> fds;  // each mapped file's descriptor (owned by im.fds), by Mapping::object
  std::vector<Range> old;          // what the stub unmaps
  std::vector<Op> ops;

  // Where prepare() writes inside the region. What it writes comes first,
  // right after the code page, so that it spans few pages: after a fork() in
  // the caller, each page written costs a copy-on-write fault. The XSAVE area
  // and the dents buffer (written by the child alone) go last, at offsets
  // from the region's end that stay the same for as long as the region
  // lives: the XSAVE area is written once.
  struct Layout {
    std::size_t n_ops = 0;
    std::size_t header = 0;  // zero word, saved mask
    std::size_t keep = 0, mm = 0, mm_exe = 0, comm = 0, groups = 0, auxv = 0, ops = 0, stack = 0, strings = 0;
    std::size_t size = 0;  // at least; a spare region taken again may be larger
  } at;

  [[nodiscard]] const exec::Plan& plan() const { return *im.pred.plan; }
  [[nodiscard]] bool dies_in_exec() const { return killed_in_exec(im.pred); }
  [[nodiscard]] std::uint8_t* in_region(std::size_t offset) const { return im.region.base + offset; }
  void step(std::string stage, std::string detail) {
    im.steps.push_back({std::move(stage), std::move(detail)});
    if (opts.on_step) opts.on_step(im.steps.back());
  }
};

// The request as the model must see it to predict our exec exactly: our own
// dice, the vDSO and the mmap area where this process has them.
void roll_dice(Bprm& b) {
  b.req = b.opts.request;
  b.dice = exec::Dice::roll();
  b.hooks.vdso_base = getauxval(AT_SYSINFO_EHDR);                         // the vDSO stays where it is
  static const std::optional<std::uint64_t> mmap_base = own_mmap_base();  // fixed for the process's life
  b.hooks.mmap_base = mmap_base;                                          // and so does the mmap area
  // ETXTBSY is checked by the kernel (check_loadable()); skip the /proc scan.
  static const exec::OpenWriters no_writers;
  b.req.writers = &no_writers;
  b.req.dice = b.dice;
  b.req.addr_no_randomize = b.req.addr_no_randomize || !b.opts.randomize;
  b.req.want_stack_image = true;
  b.req.explain = b.opts.keep_prediction || b.tracing;
  // The kernel's facts do not change while we run; whether binfmt_misc is
  // mounted (here, in this mount namespace) can.
  static const exec::SystemFacts kernel_facts = exec::SystemFacts::probe();
  b.facts = kernel_facts;
  b.facts.binfmt_misc_mounted = access((b.facts.binfmt_misc_dir + "/register").c_str(), F_OK) == 0;
}

using ModelFiles = std::vector<std::pair<std::string, UniqueFd>>;

// exec::predict() with HOOKS, taking ownership of the files the model hands over.
Result<exec::Prediction> predict_keeping_files(exec::Request& req, exec::detail::ExecHooks hooks,
                                               const exec::SystemFacts& facts, ModelFiles& files) {
  std::vector<std::pair<std::string, int>> handed;
  hooks.mapped_files = &handed;
  req.hooks = &hooks;
  auto pred = exec::predict(req, facts);
  req.hooks = nullptr;
  for (auto& [path, fd] : handed) files.emplace_back(std::move(path), UniqueFd(fd));
  return pred;
}

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
Result<exec::Prediction> place_vdso(Bprm& b, Result<exec::Prediction> pred, ModelFiles& files) {
  exec::Request moved = b.req;
  exec::detail::ExecHooks without_vdso = b.hooks;
  without_vdso.vdso_base.reset();
  ModelFiles moved_files;
  auto alt = predict_keeping_files(moved, without_vdso, b.facts, moved_files);
  std::optional<std::uint64_t> at;
  if (alt && !killed_in_exec(*alt) && alt->plan)
    for (const auto& a : alt->plan->auxv)
      if (a.type == AT_SYSINFO_EHDR) at = a.value;
  if (!at) return pred;  // moved_files close here
  files = std::move(moved_files);
  b.moved_vdso = at;
  b.vdso_pieces = vdso_mappings(*b.hooks.vdso_base - b.facts.vvar_size, *b.hooks.vdso_base + b.facts.vdso_size);
  return alt;
}

// The chain the kernel walks (search_binary_handler()), in words.
void trace_dispatch(Bprm& b) {
  for (const auto& c : b.im.pred.chain)
    b.step("dispatch",
           c.path + (c.kind == exec::LinkKind::script ? " is a #! script: interpreter " + c.interpreter.value_or("") +
                                                            (c.arg ? " arg \"" + *c.arg + "\"" : "")
                     : c.kind == exec::LinkKind::misc
                         ? " matches binfmt_misc " + c.misc_entry + ": " + c.interpreter.value_or("")
                         : " is ELF" + (c.interpreter ? ", PT_INTERP " + *c.interpreter : std::string(", static"))));
}

// 1. The kernel's exec model, with our dice: every address exact. The files
// the model examined are duplicated for mapping: the very files the kernel
// would map, not a second open of their paths. From here they belong to the
// Prepared (closed by its destructor, or by the stub).
Status predict_image(Bprm& b) {
  roll_dice(b);
  ModelFiles model_files;
  auto pred = predict_keeping_files(b.req, b.hooks, b.facts, model_files);
  if (pred && killed_in_exec(*pred) && b.hooks.vdso_base) pred = place_vdso(b, std::move(pred), model_files);
  for (auto& [path, fd] : model_files) {
    UniqueFd kept = above_floor(std::move(fd), b.opts.descriptor_floor);
    if (!kept) continue;  // open_mapped_files() opens it again, and names the error
    b.fds.emplace(path, kept.get());
    b.im.fds.push_back(std::move(kept));
  }
  if (!pred) return pred.error();
  b.im.pred = std::move(*pred);
  if (b.tracing) trace_dispatch(b);
  return ok_status();
}

// What makes execve fail before its point of no return, or what this exec
// cannot do that the kernel's can.
Status check_loadable(const Bprm& b) {
  const exec::Prediction& p = b.im.pred;
  const std::string& path = b.req.path;
  if (p.outcome == exec::Outcome::error)
    return Error(p.err, "execve " + path + ": " + errno_name(p.err) + " (" + p.diagnosis + ")");
  // Every file the kernel would open for exec, in its order: the chain, then PT_INTERP.
  std::vector<std::string> opened;
  for (const auto& c : p.chain) {
    opened.push_back(c.path);
    if (c.kind == exec::LinkKind::elf && c.interpreter) opened.push_back(*c.interpreter);
  }
  for (const auto& f : opened) {
    if (kernel_open_check(f) == ETXTBSY)
      return Error(ETXTBSY, "execve " + path + ": ETXTBSY (" + f + " is open for writing by some process)");
  }
  if (!p.plan) return Error(ENOEXEC, "execve " + path + ": no image to load");
  const exec::Plan& plan = *p.plan;
  if (p.elf_header && !p.elf_header->is64)
    return Error(EOPNOTSUPP, "user-space exec of " + plan.exe + ": 32-bit (ia32) images are not supported");
  const bool all_known = std::all_of(plan.mappings.begin(), plan.mappings.end(),
                                     [](const exec::Mapping& m) { return m.address_known || m.object == "[heap]"; });
  if (!b.dies_in_exec() && (!plan.rsp || plan.stack_tables.empty() || !all_known || !plan.entry))
    return Error(EINVAL, "user-space exec of " + plan.exe + ": the layout is not fully known");
  return ok_status();
}

// 2. Every file that gets mapped has its descriptor (paths as the kernel
// named them); one the model did not hand over is opened here.
Status open_mapped_files(Bprm& b) {
  const std::string& cwd = b.req.cwd;
  for (const auto& m : b.plan().mappings) {
    if (!m.file_backed || b.fds.count(m.object)) continue;
    std::string path = m.object[0] == '/' || cwd.empty() ? m.object : cwd + "/" + m.object;
    UniqueFd fd = above_floor(UniqueFd(open(path.c_str(), O_RDONLY | O_CLOEXEC)), b.opts.descriptor_floor);
    if (!fd) {
      int e = errno;
      return Error(e,
                   "user-space exec: opening " + m.object + " to map it: " + errno_name(e) +
                       (e == EACCES ? " (the kernel maps files it may only execute; user space must read them)" : ""));
    }
    b.fds[m.object] = fd.get();
    b.im.fds.push_back(std::move(fd));
  }
  return ok_status();
}

// The offsets of everything prepare() writes into the region (see Layout).
Bprm::Layout lay_out(const Bprm& b) {
  const exec::Plan& plan = b.plan();
  Bprm::Layout at;
  // The ops counted here, plus 32 for the fixed ones (copies, mm fields,
  // identity, closes, resets, the end), about 20 today.
  at.n_ops =
      b.old.size() + plan.mappings.size() + plan.zero_ranges.size() + b.im.fds.size() + 2 * b.vdso_pieces.size() + 32;
  at.header = kPage;  // after the code
  at.keep = at.header + 64;
  at.mm = at.keep + 64 * sizeof(int);
  at.mm_exe = at.mm + sizeof(MmMap);
  at.comm = at.mm_exe + sizeof(MmMap);
  at.groups = at.comm + 16;
  const std::size_t n_groups = b.opts.become_groups ? b.opts.become_groups->size() : 0;
  at.auxv = (at.groups + sizeof(gid_t) * n_groups + 15) & ~std::size_t{15};
  at.ops = (at.auxv + plan.auxv.size() * 16 + 63) & ~std::size_t{63};
  at.stack = at.ops + at.n_ops * sizeof(Op);
  at.strings = at.stack + plan.stack_tables.size();
  at.size = std::max((at.strings + plan.stack_strings.size() + kXsaveSize + kDentsSize + kPage - 1) & ~(kPage - 1),
                     kRegionMin);
  return at;
}

// A region a previous Prepared left (see release_region()), else a new one
// at a random place between 4 GiB and 80 TiB: below PIE images
// (ELF_ET_DYN_BASE ~85 TiB) and far from the mmap area, so that the hole its
// data pages leave never changes where the new program's own mmap() calls
// land. Either way clear of the new image. MAP_FAILED when there is no room.
void* place_region(std::size_t& size, const std::vector<Range>& avoid, bool& reused) {
  void* base = take_spare_region(size, avoid);
  reused = base != nullptr;
  if (base) return base;
  for (int attempt = 0; attempt < 64; ++attempt) {
    std::uint64_t draw = 0;
    (void)getrandom(&draw, sizeof draw, 0);
    void* hint = reinterpret_cast<void*>(0x100000000ull + (draw % 0x4ff000000000ull & ~(kPage - 1)));
    void* a = mmap(hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (a == MAP_FAILED) continue;
    if (!clashes(reinterpret_cast<std::uint64_t>(a), size, avoid)) return a;
    munmap(a, size);
  }
  return MAP_FAILED;
}

// 3. The stub region, clear of every range of the new image.
Status reserve_region(Bprm& b, bool& reused) {
  const exec::Plan& plan = b.plan();
  std::vector<Range> new_ranges;
  for (const auto& m : plan.mappings)
    if (m.address_known && m.end > m.start) new_ranges.push_back({m.start, m.end});
  new_ranges.push_back({plan.stack_vma_start, plan.stack_top});
  if (plan.brk) new_ranges.push_back({*plan.brk, *plan.brk + (64ull << 20)});  // leave the heap room to grow
  b.old = old_mappings((1ull << 47) - kPage, b.facts);                         // TASK_SIZE, 4-level paging
  b.at = lay_out(b);
  std::size_t size = b.at.size;
  void* base = place_region(size, new_ranges, reused);
  if (base == MAP_FAILED) return Error(ENOMEM, "user-space exec: no room for the stub outside the new image");
  Region& R = b.im.region;
  R.base = static_cast<std::uint8_t*>(base);
  R.size = size;
  R.code = R.base;
  R.zero_word = reinterpret_cast<std::uint64_t*>(R.base + b.at.header);
  R.saved_mask = R.zero_word + 1;
  R.xsave = R.base + size - kDentsSize - kXsaveSize;  // size: the region's, which may be a larger spare
  R.dents = R.base + size - kDentsSize;
  R.dents_size = kDentsSize;
  R.keep_fds = reinterpret_cast<int*>(R.base + b.at.keep);
  R.keep_count = std::min<std::size_t>(b.im.fds.size(), 64);
  for (std::size_t i = 0; i < R.keep_count; ++i) R.keep_fds[i] = b.im.fds[i].get();
  R.ops = reinterpret_cast<Op*>(R.base + b.at.ops);
  // XSAVE legacy area: MXCSR (offset 24) = 0x1f80, its mask (28) = all; header XSTATE_BV = 0.
  const std::uint32_t mxcsr = 0x1f80, mxcsr_mask = 0xffff;
  if (std::memcmp(R.xsave + 24, &mxcsr, 4) != 0) std::memcpy(R.xsave + 24, &mxcsr, 4);  // a new region
  if (std::memcmp(R.xsave + 28, &mxcsr_mask, 4) != 0) std::memcpy(R.xsave + 28, &mxcsr_mask, 4);
  return ok_status();
}

// The old mm goes (exec_mmap()): everything but the stub region.
void unmap_old_image(Bprm& b) {
  const Region& R = b.im.region;
  const auto self_lo = reinterpret_cast<std::uint64_t>(R.base), self_hi = self_lo + R.size;
  for (const auto& r : b.old) {
    if (r.end <= self_lo || r.start >= self_hi) {
      b.ops.push_back(syscall_op(kOpSyscall, SYS_munmap, {r.start, r.end - r.start}));
    } else {
      if (r.start < self_lo) b.ops.push_back(syscall_op(kOpSyscall, SYS_munmap, {r.start, self_lo - r.start}));
      if (r.end > self_hi) b.ops.push_back(syscall_op(kOpSyscall, SYS_munmap, {self_hi, r.end - self_hi}));
    }
  }
  if (b.tracing)
    b.step("unmap", "everything of the old image (program, libraries, heap, stack) in " + std::to_string(b.ops.size()) +
                        " munmap calls; the vDSO stays");
}

// See place_vdso(). Through a spot next to the stub region (free once the
// old image is unmapped), since mremap() refuses overlapping source and target.
void move_vdso(Bprm& b) {
  const Region& R = b.im.region;
  const auto self_lo = reinterpret_cast<std::uint64_t>(R.base), self_hi = self_lo + R.size;
  const std::uint64_t from = *b.hooks.vdso_base - b.facts.vvar_size, to = *b.moved_vdso - b.facts.vvar_size;
  const std::uint64_t span = b.facts.vvar_size + b.facts.vdso_size;
  const std::vector<Range> vdso_places{{from, from + span}, {to, to + span}};
  const std::uint64_t spot = clashes(self_hi, span, vdso_places) ? self_lo - span : self_hi;
  for (const std::uint64_t dst : {spot, to}) {
    const std::uint64_t src = dst == spot ? from : spot;
    for (const auto& v : b.vdso_pieces)
      b.ops.push_back(syscall_op(kOpSyscall, SYS_mremap,
                                 {src + (v.start - from), v.end - v.start, v.end - v.start,
                                  MREMAP_MAYMOVE | MREMAP_FIXED, dst + (v.start - from)}));
  }
  if (b.tracing)
    b.step("vdso", "move the vDSO from " + hex(*b.hooks.vdso_base) + " to " + hex(*b.moved_vdso) +
                       ": the new image is mapped where it is (the kernel maps the vDSO after the image)");
}

// fs/binfmt_elf.c elf_load() for every PT_LOAD, the stack VMA and bss;
// then padzero() of the tails of the last file pages.
void map_image(Bprm& b) {
  for (const auto& m : b.plan().mappings) {
    if (m.end <= m.start || m.object.rfind("[vvar", 0) == 0 || m.object == "[vdso]" || m.object == "[heap]") continue;
    const std::uint64_t len = m.end - m.start;
    if (m.file_backed) {
      b.ops.push_back(syscall_op(kOpSyscall, SYS_mmap,
                                 {m.start, len, static_cast<std::uint64_t>(m.prot), MAP_PRIVATE | MAP_FIXED,
                                  static_cast<std::uint64_t>(b.fds[m.object]), m.file_offset}));
    } else {
      const std::uint64_t flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | (m.object == "[stack]" ? MAP_GROWSDOWN : 0);
      b.ops.push_back(
          syscall_op(kOpSyscall, SYS_mmap,
                     {m.start, len, static_cast<std::uint64_t>(m.prot), flags, static_cast<std::uint64_t>(-1), 0}));
    }
    if (b.tracing)
      b.step("map", hex(m.start) + "-" + hex(m.end) + " " + prot_string(m.prot) + " " + m.object +
                        (m.file_backed ? " @" + hex(m.file_offset) : "") + (m.note.empty() ? "" : " (" + m.note + ")"));
  }
  for (const auto& [start, len] : b.plan().zero_ranges) {
    Op z;
    z.kind = kOpZero;
    z.a[0] = start;
    z.a[1] = len;
    b.ops.push_back(z);
    if (b.tracing)
      b.step("bss", "zero " + std::to_string(len) + " bytes at " + hex(start) + " (tail of the last file page)");
  }
}

// create_elf_tables(): the initial stack, byte for byte, in the kernel's two
// pieces (the gap between them stays untouched, as under the kernel).
void copy_stack(Bprm& b) {
  const exec::Plan& plan = b.plan();
  std::memcpy(b.in_region(b.at.stack), plan.stack_tables.data(), plan.stack_tables.size());
  std::memcpy(b.in_region(b.at.strings), plan.stack_strings.data(), plan.stack_strings.size());
  for (const auto& [to, from, len] : {std::tuple{*plan.rsp, b.at.stack, plan.stack_tables.size()},
                                      std::tuple{plan.stack_strings_start, b.at.strings, plan.stack_strings.size()}}) {
    Op c;
    c.kind = kOpCopy;
    c.a[0] = to;
    c.a[1] = reinterpret_cast<std::uint64_t>(b.in_region(from));
    c.a[2] = len;
    b.ops.push_back(c);
  }
  if (b.tracing) {
    for (const auto& l : plan.stack_layout) b.step("stack", l);
    for (const auto& a : plan.auxv)
      b.step("auxv", a.name + " = " + (a.value ? hex(*a.value) : std::string("?")) +
                         (a.describe.empty() ? "" : "  " + a.describe));
  }
}

// The mm fields: what /proc/PID/{exe,cmdline,environ,auxv} and brk() see.
void set_mm_fields(Bprm& b) {
  const exec::Plan& plan = b.plan();
  auto* mm = reinterpret_cast<MmMap*>(b.in_region(b.at.mm));
  auto* auxv = reinterpret_cast<std::uint64_t*>(b.in_region(b.at.auxv));
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
              static_cast<std::uint32_t>(b.fds.count(plan.exe) ? b.fds[plan.exe] : -1)};
  if (!b.opts.set_mm) {
    b.im.differences.push_back(
        "--no-set-mm: /proc/PID/exe, cmdline, environ and auxv keep the old process's values and "
        "brk() starts from the old heap");
    return;
  }
  // PR_SET_MM_MAP needs no capability, except for the exe link
  // (checkpoint_restore_ns_capable(): CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE),
  // so set the fields first and the exe link in a second call.
  const std::uint32_t exe_fd = mm->exe_fd;
  mm->exe_fd = static_cast<std::uint32_t>(-1);
  auto* mm_exe = reinterpret_cast<MmMap*>(b.in_region(b.at.mm_exe));
  *mm_exe = *mm;
  mm_exe->exe_fd = exe_fd;
  b.ops.push_back(syscall_op(kOpSyscallIgnore, SYS_prctl,
                             {PR_SET_MM, PR_SET_MM_MAP, reinterpret_cast<std::uint64_t>(mm), sizeof(MmMap), 0}));
  // The capability of whoever enters: the caller when the identity changes
  // only at the end (become_*), else the identity of the request.
  const bool late_ids = b.opts.become_uid || b.opts.become_gid || b.opts.become_groups;
  const exec::Credentials who = late_ids ? exec::Credentials::current() : b.req.creds;
  if (who.cap_sys_admin || who.cap_checkpoint_restore)
    b.ops.push_back(syscall_op(kOpSyscallIgnore, SYS_prctl,
                               {PR_SET_MM, PR_SET_MM_MAP, reinterpret_cast<std::uint64_t>(mm_exe), sizeof(MmMap), 0}));
  else
    b.im.differences.push_back(
        "no CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE: /proc/PID/exe keeps pointing at the old program");
}

// comm = basename of the execve path, 15 bytes (__set_task_comm(kbasename(bprm->filename))).
void set_comm(Bprm& b) {
  const std::string& path = b.req.path;
  const std::string base_name = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  auto* comm = reinterpret_cast<char*>(b.in_region(b.at.comm));
  std::strncpy(comm, base_name.c_str(), 15);
  b.ops.push_back(syscall_op(kOpSyscallIgnore, SYS_prctl, {PR_SET_NAME, reinterpret_cast<std::uint64_t>(comm)}));
}

// The identity to end with (Options::become_*), raw system calls: they
// must succeed, or the process dies as after any failure past this point.
void take_identity(Bprm& b) {
  const Options& o = b.opts;
  if (o.become_groups) {
    auto* g = reinterpret_cast<gid_t*>(b.in_region(b.at.groups));
    std::copy(o.become_groups->begin(), o.become_groups->end(), g);
    b.ops.push_back(
        syscall_op(kOpSyscall, SYS_setgroups, {o.become_groups->size(), reinterpret_cast<std::uint64_t>(g)}));
  }
  if (o.become_gid)
    b.ops.push_back(syscall_op(kOpSyscall, SYS_setresgid, {*o.become_gid, *o.become_gid, *o.become_gid}));
  if (o.become_uid)
    b.ops.push_back(syscall_op(kOpSyscall, SYS_setresuid, {*o.become_uid, *o.become_uid, *o.become_uid}));
  // commit_creds() made the process non-dumpable when the ids changed; exec
  // makes it dumpable again for a plain (not set-id) program
  // (begin_new_exec(): set_dumpable(SUID_DUMP_USER)).
  if (o.become_uid || o.become_gid) b.ops.push_back(syscall_op(kOpSyscallIgnore, SYS_prctl, {PR_SET_DUMPABLE, 1}));
}

// What the new thread must not inherit from the old one: the files just
// mapped, the TLS bases, the robust futex list and clear_child_tid
// (exec_mm_release()), then the signal mask enter() found; start_thread().
void start_thread(Bprm& b) {
  for (const UniqueFd& fd : b.im.fds)
    b.ops.push_back(syscall_op(kOpSyscallIgnore, SYS_close, {static_cast<std::uint64_t>(fd.get())}));
  b.ops.push_back(syscall_op(kOpSyscallIgnore, SYS_arch_prctl, {0x1002 /* ARCH_SET_FS */, 0}));
  b.ops.push_back(syscall_op(kOpSyscallIgnore, SYS_arch_prctl, {0x1001 /* ARCH_SET_GS */, 0}));
  b.ops.push_back(syscall_op(kOpSyscallIgnore, SYS_set_robust_list, {0, 24}));
  b.ops.push_back(syscall_op(kOpSyscallIgnore, SYS_set_tid_address, {0}));
  b.ops.push_back(syscall_op(kOpRestoreMask, SYS_rt_sigprocmask, {}));  // the mask enter() found
  const exec::Plan& plan = b.plan();
  if (b.tracing)
    b.step("entry", "jump to " + hex(plan.entry.value_or(0)) +
                        (plan.entry_in_interp ? " (the interpreter's entry)" : "") + " with rsp " + hex(*plan.rsp) +
                        ", every other register 0, rflags 0x202, FPU reset");
  // The end: unmap the data pages of the stub region, keep only its code page.
  Op end;
  end.kind = kOpEndUnmap;
  end.a[0] = reinterpret_cast<std::uint64_t>(b.im.region.base) + kPage;
  end.a[1] = b.im.region.size - kPage;
  b.ops.push_back(end);
}

// 4. The op table: what the kernel does from its point of no return on.
Status write_ops(Bprm& b) {
  unmap_old_image(b);
  if (b.moved_vdso) move_vdso(b);
  if (b.dies_in_exec()) {
    // After the point of no return the kernel kills the task: so do we.
    b.ops.push_back(syscall_op(kOpSyscall, -1, {}));
    if (b.tracing) b.step("killed", b.im.pred.diagnosis);
    b.ops.push_back(Op{});
  } else {
    map_image(b);
    copy_stack(b);
    set_mm_fields(b);
    set_comm(b);
    take_identity(b);
    start_thread(b);
  }
  if (b.ops.size() > b.at.n_ops) return Error(E2BIG, "user-space exec: op table overflow");
  std::copy(b.ops.begin(), b.ops.end(), b.im.region.ops);
  return ok_status();
}

// 5. The code page: copy the stub (a region taken again has it already),
// patch its slots.
// The code page stays rw- in this process: enter() makes it r-x in the
// process that runs it, so that a region taken again is rewritten without
// two mprotect() calls here (3.6 us) and no page is ever writable and
// executable at once. Whether this process may make anonymous memory
// executable at all (SELinux execmem, PaX MPROTECT) is asked once per new
// region, so that a refusal is an error here and not a dead child.
Status install_stub(Bprm& b, bool reused) {
  Region& R = b.im.region;
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
  const exec::Plan& plan = b.plan();
  const std::uint64_t entry = plan.entry.value_or(0), rsp = plan.rsp.value_or(0);
  std::memcpy(R.code + stub_entry_slot(), &entry, 8);
  std::memcpy(R.code + stub_rsp_slot(), &rsp, 8);
  return ok_status();
}

// What will differ from the kernel's exec, beyond what the stages noted.
void note_differences(Bprm& b) {
  auto& d = b.im.differences;
  d.push_back("one 4 KiB page of the stub's code stays mapped r-x at " +
              hex(reinterpret_cast<std::uint64_t>(b.im.region.base)) +
              " (the code that unmapped the old image cannot unmap itself)");
  if (b.moved_vdso)
    d.push_back("the vDSO is moved from " + hex(*b.hooks.vdso_base) + " to " + hex(*b.moved_vdso) +
                ", where the kernel would map it after the image, instead of a new random place");
  else d.push_back("the vDSO keeps its address (" + hex(*b.hooks.vdso_base) + ") instead of a new random one");
  for (const auto& a : b.plan().auxv)
    if (a.type == AT_EUID || a.type == AT_EGID)
      if (a.value && *a.value != (a.type == AT_EUID ? geteuid() : getegid()))
        d.push_back("set-user-ID / set-group-ID bits are not applied: user space cannot gain privileges");
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

// The kernel's exec in user space, up to its point of no return: predict
// and check the image (bprm_execve()), then write down, as the stub's op
// table, what begin_new_exec() and load_elf_binary() do after it.
Result<Prepared> prepare(const Options& opts) {
  if (!opts.for_child && count_threads() > 1)
    return Error(EBUSY,
                 "user-space exec: this process has other threads; the kernel's exec would kill them "
                 "(de_thread()), user space cannot: run it in a fresh child (procforge run --loader=user)");
  Prepared out;
  Bprm b(opts, *out.impl_);
  bool reused = false;
  if (auto st = predict_image(b); !st) return st.error();
  if (auto st = check_loadable(b); !st) return st.error();
  if (auto st = open_mapped_files(b); !st) return st.error();
  if (auto st = reserve_region(b, reused); !st) return st.error();
  if (auto st = write_ops(b); !st) return st.error();
  if (auto st = install_stub(b, reused); !st) return st.error();
  note_differences(b);
  if (!opts.keep_prediction) b.im.pred = exec::Prediction{};
  return out;
}

}  // namespace procforge::user_exec
