// The new image's address space after the point of no return, built stage by
// stage as fs/binfmt_elf.c load_elf_binary() builds it (sources in
// layout.hpp). ImageMapper carries the state from one stage to the next;
// build_layout() at the bottom is the list of stages in the kernel's order.
#include "exec/layout.hpp"
#include "exec/hooks.hpp"
#include "procforge/format.hpp"

#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <fstream>

namespace procforge::exec {

namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kTaskSize64 = (1ull << 47) - kPage;  // TASK_SIZE_MAX, 4-level paging
constexpr std::uint64_t kTaskSizeIa32 = 0xFFFFe000;          // IA32_PAGE_OFFSET
constexpr std::uint64_t kEtDynBase64 = kTaskSize64 / 3 * 2;  // ELF_ET_DYN_BASE, asm/elf.h
// COMPAT_ELF_ET_DYN_BASE = TASK_UNMAPPED_BASE + 16 MiB, where the 32-bit
// TASK_UNMAPPED_BASE is PAGE_ALIGN(IA32_PAGE_OFFSET / 3) (asm/elf.h, asm/processor.h).
constexpr std::uint64_t kEtDynBaseIa32 = ((0xFFFFe000ull / 3 + 0xfff) & ~0xfffull) + 0x1000000;
constexpr std::uint64_t kTopPad = 8;  // __bprm_mm_init(): sizeof(void *) of the kernel, whatever the image
constexpr std::uint64_t kStackGuardGap = 256 * kPage;  // mm/mmap.c stack_guard_gap
constexpr std::uint64_t kStackExpand = 128 * 1024;     // setup_arg_pages() stack_expand
constexpr std::uint64_t kThpSize = 2ull << 20;
constexpr std::uint64_t kStackRoomMin = 512;  // below this the first calls of any program fault (heuristic)

std::uint64_t page_start(std::uint64_t a) { return a & ~(kPage - 1); }
std::uint64_t page_offset(std::uint64_t a) { return a & (kPage - 1); }
std::uint64_t page_align(std::uint64_t a) { return (a + kPage - 1) & ~(kPage - 1); }

int prot_of(std::uint32_t pf) {
  return ((pf & PF_R) ? PROT_READ : 0) | ((pf & PF_W) ? PROT_WRITE : 0) | ((pf & PF_X) ? PROT_EXEC : 0);
}

struct Vma {
  std::uint64_t start, end;
  int prot;
  std::string object;
  std::uint64_t off;
  bool file;
  std::string region;  // which randomised region it moves with
  std::string note;
};

// The address space being built, with MAP_FIXED replacement semantics.
class AddressSpace {
 public:
  void map_fixed(Vma v) {
    std::vector<Vma> out;
    for (auto& o : vmas_) {
      if (o.end <= v.start || o.start >= v.end) {
        out.push_back(o);
        continue;
      }
      if (o.start < v.start) {
        Vma lo = o;
        lo.end = v.start;
        out.push_back(lo);
      }
      if (o.end > v.end) {
        Vma hi = o;
        if (hi.file) hi.off += v.end - o.start;
        hi.start = v.end;
        out.push_back(hi);
      }
    }
    out.push_back(std::move(v));
    std::sort(out.begin(), out.end(), [](const Vma& a, const Vma& b) { return a.start < b.start; });
    vmas_ = std::move(out);
  }
  bool overlaps(std::uint64_t start, std::uint64_t end) const {
    return std::any_of(vmas_.begin(), vmas_.end(), [&](const Vma& o) { return o.start < end && start < o.end; });
  }
  // vm_unmapped_area() top-down: the highest free range of len below `top`.
  std::optional<std::uint64_t> top_down(std::uint64_t len, std::uint64_t top, std::uint64_t low,
                                        std::uint64_t align = kPage) const {
    std::uint64_t hi = top;
    for (auto it = vmas_.rbegin(); it != vmas_.rend(); ++it) {
      if (it->start >= hi) continue;
      if (it->end <= hi && hi - it->end >= len) {
        std::uint64_t a = (hi - len) & ~(align - 1);
        if (a >= it->end) return a;
      }
      hi = std::min(hi, it->start);
    }
    if (hi >= low + len) {
      std::uint64_t a = (hi - len) & ~(align - 1);
      if (a >= low) return a;
    }
    return std::nullopt;
  }
  const Vma* find(std::uint64_t addr) const {
    for (auto& v : vmas_)
      if (v.start <= addr && addr < v.end) return &v;
    return nullptr;
  }
  const std::vector<Vma>& vmas() const { return vmas_; }

 private:
  std::vector<Vma> vmas_;
};

struct Limits {
  bool ia32;
  std::uint64_t task_size, et_dyn_base, stack_top, word;
};

// __vm_enough_memory() with the default heuristic overcommit: one private
// writable mapping larger than RAM + swap is refused.
bool commit_refused(std::uint64_t bytes) {
  static const std::uint64_t total = [] {
    std::ifstream mi("/proc/meminfo");
    std::string key;
    std::uint64_t kb = 0, sum = 0;
    std::string unit;
    while (mi >> key >> kb) {
      if (key == "MemTotal:" || key == "SwapTotal:") sum += kb * 1024;
      std::getline(mi, unit);
    }
    return sum;
  }();
  static const int mode = [] {
    std::ifstream f("/proc/sys/vm/overcommit_memory");
    int m = 0;
    f >> m;
    return m;
  }();
  return mode == 0 && total && bytes > total;
}

// bprm_fill_uid() and cap_bprm_creds_from_file(): the ids the image runs with
// and whether the exec is "secure" (AT_SECURE).
struct NewCreds {
  uid_t uid, euid;
  gid_t gid, egid;
  bool secure;
  bool per_clear;  // PER_CLEAR_ON_SETID: personality bits dropped
  std::string why;
};

NewCreds new_creds(const Context& ctx, const ExecFile& f) {
  const Credentials& c = ctx.req.creds;
  NewCreds n{c.uid, c.euid, c.gid, c.egid, false, false, ""};
  // bprm_fill_uid(): no set-id on nosuid mounts or under no_new_privs.
  const bool nosuid = f.mount_flags & ST_NOSUID;
  const bool may_suid = !c.no_new_privs && !nosuid;
  if (may_suid && (f.st.st_mode & S_ISUID)) n.euid = f.st.st_uid, n.per_clear = true;
  if (may_suid && (f.st.st_mode & S_ISGID) && (f.st.st_mode & S_IXGRP)) n.egid = f.st.st_gid, n.per_clear = true;
  bool filecaps = false;
  if (c.uid != 0 && may_suid) filecaps = fgetxattr(f.fd.get(), "security.capability", nullptr, 0) > 0;
  n.secure = n.euid != c.uid || n.egid != c.gid || filecaps;
  if (filecaps) n.per_clear = true;  // cap_bprm_creds_from_file(): privileges gained
  if (n.euid != c.euid) n.why = "set-user-ID file";
  else if (n.egid != c.egid) n.why = "set-group-ID file";
  else if (filecaps) n.why = "file capabilities";
  else if (n.secure) n.why = "the caller's effective and real ids differ";
  return n;
}

// One auxv entry as create_elf_tables() writes it, with the words explain
// shows next to it.
struct Aux {
  std::uint64_t type;
  std::optional<std::uint64_t> value;
  std::string describe;
};

std::optional<std::uint64_t> known(bool k, std::uint64_t v) {
  return k ? std::optional<std::uint64_t>(v) : std::nullopt;
}

// load_elf_binary() after begin_new_exec(), one member function per stage the
// kernel has, and the state one stage leaves for the next. (Not "Loader":
// in this project that word means ld.so and the user-space exec.)
struct ImageMapper {
  Context& ctx;
  Bprm& b;
  const ElfImage& main;
  const ElfImage* interp;
  const Request& req;
  const SystemFacts& facts;
  Plan plan;
  Limits lim;
  NewCreds nc;
  const Dice dice;  // with dice every random draw is known, so every address is exact
  const detail::ExecHooks hooks;
  bool randomize = false;
  bool exact = false;
  std::uint64_t rlim_stack = 0;
  std::uint64_t top = 0;  // stack top after randomize_stack_top()
  std::uint64_t mmap_base = 0;
  std::uint64_t strings_low = 0;  // bprm->p: the lowest argument string
  AddressSpace as;
  bool dead = false;  // a stage has killed the task
  std::vector<std::pair<std::uint64_t, std::uint64_t>> zero_ranges;
  // map_program()
  std::uint64_t load_bias = 0, phdr_addr = 0, elf_brk = 0, e_entry = 0;
  bool bias_known = true, phdr_covered = false;
  // load_elf_interp()
  std::uint64_t entry = 0, interp_base = 0;
  // arch_setup_additional_pages()
  std::uint64_t vdso_addr = 0;
  bool have_vdso = false;
  // set_brk()
  std::uint64_t brk = 0;
  bool brk_random = false;
  // create_elf_tables()
  std::string platform;  // ELF_PLATFORM / COMPAT_ELF_PLATFORM
  std::vector<Aux> aux;
  std::uint64_t align_p = 0, u_platform = 0, u_random = 0, items = 0, rsp = 0, frame = 0;

  ImageMapper(Context& c, Bprm& bprm, const ElfImage& m, const ElfImage* i)
      : ctx(c),
        b(bprm),
        main(m),
        interp(i),
        req(c.req),
        facts(c.facts),
        lim(m.ia32 ? Limits{true, kTaskSizeIa32, kEtDynBaseIa32, kTaskSizeIa32, 4}
                   : Limits{false, kTaskSize64, kEtDynBase64, kTaskSize64, 8}),
        nc(new_creds(c, *m.file)),
        dice(c.req.dice.value_or(Dice{})),
        hooks(c.req.hooks ? *c.req.hooks : detail::ExecHooks{}),
        platform(m.ia32 ? "i686" : "x86_64") {
    plan.exe = main.file->path;
    plan.exe_type = main.h.type;
    if (interp) plan.interp = interp->file->path;
  }

  std::uint64_t rnd(std::uint64_t v) const { return randomize ? v : 0; }

  void segv(const std::string& step, const std::string& object, const std::string& why, const std::string& fix) {
    if (dead) return;
    dead = true;
    ctx.check(step, object, false, why, "fs/binfmt_elf.c (after begin_new_exec: failure = SIGSEGV)");
    ctx.kill(SIGSEGV, false, step, object,
             why +
                 "; the failure comes after the point of no return, so execve does not return an error: the "
                 "new process is killed with SIGSEGV",
             fix);
  }

  // begin_new_exec(): PF_RANDOMIZE (personality ADDR_NO_RANDOMIZE or
  // randomize_va_space=0 turn it off, but a set-id exec clears
  // ADDR_NO_RANDOMIZE first: bprm_fill_uid() adds PER_CLEAR_ON_SETID), and the
  // stack limit snapshot, clamped for a secure exec.
  void begin_new_exec() {
    randomize = (!req.addr_no_randomize || nc.per_clear) && facts.randomize_va_space != 0;
    if (req.addr_no_randomize && nc.per_clear)
      ctx.out.rules_applied.push_back("set-id program: the kernel clears ADDR_NO_RANDOMIZE (PER_CLEAR_ON_SETID)");
    exact = !randomize || req.dice.has_value();
    rlim_stack = req.rlimit_stack;
    if (nc.secure) rlim_stack = std::min<std::uint64_t>(rlim_stack, 8ull << 20);
  }

  // randomize_stack_top(), then setup_arg_pages(): arch_align_stack() and PAGE_ALIGN.
  void randomize_stack_top() {
    top = page_align((page_align(lim.stack_top) - (rnd(dice.stack_rnd_pages) << 12) - rnd(dice.setup_align)) & ~0xfull);
    plan.stack_top = top;
  }

  // arch/x86/mm/mmap.c arch_pick_mmap_layout() -> mmap_base(): the top of the
  // mmap area, a gap of RLIMIT_STACK plus the stack's random range below the
  // stack. It keeps a 32-bit base too; a compat task uses it.
  void arch_pick_mmap_layout() {
    std::uint64_t gap = rlim_stack;
    const std::uint64_t pad = (randomize ? ((main.ia32 ? 0x7ffull : 0x3fffffull) << 12) : 0) + kStackGuardGap;
    if (gap + pad > gap) gap += pad;
    const std::uint64_t mmap_task = main.ia32 ? kTaskSizeIa32 : kTaskSize64;
    gap = std::clamp<std::uint64_t>(gap, 128ull << 20, mmap_task / 6 * 5);
    mmap_base = hooks.mmap_base ? *hooks.mmap_base : page_align(mmap_task - gap - (rnd(dice.mmap_rnd_pages) << 12));
  }

  // setup_arg_pages(): the stack VMA with the strings at its top, grown by
  // stack_expand unless that passes RLIMIT_STACK; executable when
  // PT_GNU_STACK asks for it.
  void setup_arg_pages(bool exec_stack) {
    plan.executable_stack = exec_stack;
    if (exec_stack)
      ctx.out.rules_applied.push_back("PT_GNU_STACK asks for an executable stack (the kernel warns once)");
    strings_low = top - kTopPad - b.used;
    const std::uint64_t vm_start = page_start(strings_low);
    const std::uint64_t size = top - vm_start;
    const std::uint64_t base = size + kStackExpand > rlim_stack ? top - rlim_stack : vm_start - kStackExpand;
    plan.stack_vma_start = base;
    as.map_fixed(
        {base, top, PROT_READ | PROT_WRITE | (exec_stack ? PROT_EXEC : 0), "[stack]", 0, false, "stack_top", ""});
    // A vDSO that stays where it is (the user-space exec keeps its own).
    if (hooks.vdso_base && facts.vdso)
      as.map_fixed({*hooks.vdso_base - facts.vvar_size, *hooks.vdso_base + facts.vdso_size, PROT_READ, "[vvar+vdso]", 0,
                    false, "", ""});
  }

  // security_mmap_addr() / get_unmapped_area(MAP_FIXED) checks of one mapping.
  bool can_map_at(std::uint64_t addr, std::uint64_t len, const std::string& object, const std::string& what) {
    if (len > lim.task_size || addr > lim.task_size - len) {
      segv("map " + what, object, what + " at " + hex(addr) + " (+" + hex(len) + ") lies beyond the user address space",
           "relink the program at a lower address");
      return false;
    }
    if (addr < facts.mmap_min_addr && !req.creds.cap_sys_rawio) {
      segv("map " + what, object,
           what + " at " + hex(addr) + " is below vm.mmap_min_addr (" + hex(facts.mmap_min_addr) +
               ") and the caller lacks CAP_SYS_RAWIO",
           "link the program at a normal address (e.g. 0x400000)");
      return false;
    }
    return true;
  }

  // elf_map() of a segment's file pages: p_offset and p_vaddr must agree
  // modulo the page size, the range must be mappable, and the first segment of
  // an ET_EXEC or PIE may not replace a mapping (MAP_FIXED_NOREPLACE).
  // TOTAL (page-aligned; 0: none): fs/binfmt_elf.c elf_map() maps the first
  // PT_LOAD of an ET_DYN program with the image's whole span
  // (total_mapping_size()) and unmaps the rest: the span must fit in the user
  // address space (vm_mmap(): ENOMEM) and, with MAP_FIXED_NOREPLACE, be free.
  bool elf_map(const ElfImage& img, const elf::ProgramHeader& p, std::uint64_t start, bool noreplace,
               const std::string& region, std::uint64_t total) {
    const std::string& obj = img.file->path;
    const std::uint64_t size = page_align(p.filesz + page_offset(p.vaddr));
    if (total > size && (total > lim.task_size || start > lim.task_size - total)) {
      segv("map segment", obj,
           "the first segment is mapped with the image's whole span, " + hex(total) + " bytes from " + hex(start) +
               " (the lowest to the highest PT_LOAD), which lies beyond the user address space (ENOMEM)",
           "relink the program: its PT_LOAD segments span more than the address space holds");
      return false;
    }
    if (page_offset(p.offset - page_offset(p.vaddr))) {
      segv("map segment", obj,
           "PT_LOAD at file offset " + hex(p.offset) + " and address " + hex(p.vaddr) +
               " do not agree modulo the page size, so mmap() refuses it (EINVAL)",
           "relink: p_offset and p_vaddr must be congruent modulo 4096");
      return false;
    }
    if (!can_map_at(start, size, obj, "segment")) return false;
    if (noreplace && as.overlaps(start, start + std::max(size, total))) {
      segv("map segment", obj,
           "segment at " + hex(start) +
               " collides with an existing mapping (MAP_FIXED_NOREPLACE: EEXIST; the "
               "kernel logs \"Uhuuh, elf segment at ... requested but the memory is mapped already\")",
           "relink the program at an address that does not overlap the stack");
      return false;
    }
    as.map_fixed({start, start + size, prot_of(p.flags), obj, p.offset - page_offset(p.vaddr), true, region, ""});
    return true;
  }

  // padzero(): clear_user() from the end of the file bytes to the end of the
  // page. It faults on a page past the end of the file; that only matters for
  // writable segments.
  bool padzero(const ElfImage& img, const elf::ProgramHeader& p, std::uint64_t zero_start) {
    const std::string& obj = img.file->path;
    const int prot = prot_of(p.flags);
    const std::uint64_t file_off = p.offset + p.filesz;
    const bool beyond_eof = page_start(file_off) >= page_align(static_cast<std::uint64_t>(img.file->st.st_size));
    if (beyond_eof && (prot & PROT_WRITE)) {
      segv("zero bss", obj, "the bss starts in a page past the end of the file, which cannot be zeroed (EFAULT)",
           "the file is truncated");
      return false;
    }
    if (prot & PROT_WRITE) zero_ranges.push_back({zero_start, page_align(zero_start) - zero_start});
    if (!(prot & PROT_WRITE))
      ctx.out.rules_applied.push_back("bss tail in a read-only segment of " + obj +
                                      " is not zeroed (padzero() error ignored, 6.7+)");
    return true;
  }

  // elf_load(): file pages (elf_map()), then zero the tail of the last file
  // page (padzero()), then anonymous pages up to p_memsz (vm_brk_flags()).
  bool elf_load(const ElfImage& img, const elf::ProgramHeader& p, std::uint64_t addr, bool noreplace,
                const std::string& region, std::uint64_t* map_addr, std::uint64_t total = 0) {
    const std::string& obj = img.file->path;
    const int prot = prot_of(p.flags);
    std::uint64_t zero_start, zero_end;
    if (p.filesz) {
      const std::uint64_t start = page_start(addr);
      if (!elf_map(img, p, start, noreplace, region, total)) return false;
      *map_addr = start;
      zero_start = start + page_offset(p.vaddr) + p.filesz;
      zero_end = start + page_offset(p.vaddr) + p.memsz;
      if (p.memsz > p.filesz && page_offset(zero_start) && !padzero(img, p, zero_start)) return false;
    } else {
      zero_start = page_start(addr);
      zero_end = zero_start + page_offset(p.vaddr) + p.memsz;
      *map_addr = zero_start;
    }
    if (p.memsz > p.filesz) {
      const std::uint64_t s = page_align(zero_start), e = page_align(zero_end);
      if (e > s) {
        if (!can_map_at(s, e - s, obj, "bss")) return false;
        if (commit_refused(e - s)) {
          segv("map bss", obj, "bss of " + hex(e - s) + " bytes is more than memory + swap (overcommit refuses it)",
               "shrink p_memsz");
          return false;
        }
        // vm_brk_flags(): read-write, executable only if the segment is.
        as.map_fixed({s, e, PROT_READ | PROT_WRITE | (prot & PROT_EXEC), "[bss of " + obj + "]", 0, false, region,
                      "zero-filled"});
      }
    }
    return true;
  }

  // The size checks load_elf_binary() and load_elf_interp() make after each
  // PT_LOAD: inside TASK_SIZE, p_filesz <= p_memsz.
  bool segment_fits(const elf::ProgramHeader& p, std::uint64_t k) const {
    const std::uint64_t ts = lim.task_size;
    return !(k >= ts || p.filesz > p.memsz || p.memsz > ts || ts - p.memsz < k);
  }

  static std::uint64_t total_mapping_size(const std::vector<elf::ProgramHeader>& ph) {
    std::uint64_t lo = UINT64_MAX, hi = 0;
    bool any = false;
    for (auto& p : ph)
      if (p.type == PT_LOAD) {
        lo = std::min(lo, page_start(p.vaddr));
        hi = std::max(hi, p.vaddr + p.memsz);
        any = true;
      }
    return any ? hi - lo : 0;
  }

  static std::uint64_t maximum_alignment(const std::vector<elf::ProgramHeader>& ph) {
    std::uint64_t a = 0;
    for (auto& p : ph)
      if (p.type == PT_LOAD && p.align && !(p.align & (p.align - 1))) a = std::max(a, p.align);
    return page_align(a);
  }

  // load_elf_binary(), first_pt_load: the first PT_LOAD decides the load
  // bias. An ET_EXEC stays at its own addresses; a PIE goes to
  // ELF_ET_DYN_BASE plus arch_mmap_rnd(); a loader or static PIE (no
  // interpreter) goes where an mmap() at address 0 would. True when the
  // mapping may not replace another (MAP_FIXED_NOREPLACE).
  bool first_load_bias(const elf::ProgramHeader& p, std::string& region) {
    if (main.h.type == ET_EXEC) return true;
    if (main.h.type != ET_DYN) return false;
    bool noreplace = false;
    const std::uint64_t align = maximum_alignment(main.ph);
    plan.exe_align = align;
    if (interp) {
      load_bias = lim.et_dyn_base + (rnd(dice.pie_rnd_pages) << 12);
      if (align) load_bias &= ~(align - 1);
      noreplace = true;
    } else {
      region = "mmap_base";
      const std::uint64_t total = page_align(total_mapping_size(main.ph));
      auto a = as.top_down(total, mmap_base, facts.mmap_min_addr);
      if (align > kPage) {
        load_bias = a ? *a & ~(align - 1) : 0;
        noreplace = true;
      } else {
        // The kernel maps the first segment at ELF_PAGESTART(0 - p_vaddr)
        // + p_vaddr: a hint of 0 (or past TASK_SIZE), so it lands top-down
        // at `a` whatever its p_vaddr, and the bias becomes
        // a - ELF_PAGESTART(p_vaddr). The page_start() below turns this
        // value into that bias.
        load_bias = a.value_or(0) + page_offset(p.vaddr);
      }
      if (total >= kThpSize && !req.dice) bias_known = false;  // file THP alignment may move it
    }
    plan.exe_randomized = randomize;
    load_bias = page_start(load_bias - p.vaddr);
    return noreplace;
  }

  // load_elf_binary()'s PT_LOAD loop: elf_load() of each segment, the size
  // checks, where the program headers are mapped (AT_PHDR), the end of the
  // highest segment (brk), and mm->start_code/end_code/start_data/end_data.
  bool map_program() {
    std::uint64_t start_code = UINT64_MAX, end_code = 0, start_data = 0, end_data = 0;
    std::string region = main.h.type == ET_DYN ? "exec_base" : "";
    bool first = true;
    for (const auto& p : main.ph) {
      if (p.type != PT_LOAD || dead) continue;
      const bool noreplace = first && first_load_bias(p, region);
      std::uint64_t map_addr = 0;
      const std::uint64_t total = first && main.h.type == ET_DYN ? page_align(total_mapping_size(main.ph)) : 0;
      if (!elf_load(main, p, load_bias + p.vaddr, noreplace, region, &map_addr, total)) break;
      first = false;
      if (p.offset <= main.h.phoff && main.h.phoff < p.offset + p.filesz) {
        phdr_addr = main.h.phoff - p.offset + p.vaddr;
        phdr_covered = true;
      }
      if (!segment_fits(p, p.vaddr)) {
        segv("segment size check", main.file->path,
             p.filesz > p.memsz ? "PT_LOAD has p_filesz " + hex(p.filesz) + " > p_memsz " + hex(p.memsz)
                                : "PT_LOAD at " + hex(p.vaddr) + " with p_memsz " + hex(p.memsz) +
                                      " does not fit in the user address space",
             "relink the program; its program headers are corrupt");
        break;
      }
      elf_brk = std::max(elf_brk, p.vaddr + p.memsz);
      if ((p.flags & PF_X) && p.vaddr < start_code) start_code = p.vaddr;
      if (start_data < p.vaddr) start_data = p.vaddr;
      if ((p.flags & PF_X) && end_code < p.vaddr + p.filesz) end_code = p.vaddr + p.filesz;
      if (end_data < p.vaddr + p.filesz) end_data = p.vaddr + p.filesz;
    }
    if (dead) return false;
    e_entry = main.h.entry + load_bias;
    phdr_addr += load_bias;
    elf_brk += load_bias;
    plan.exe_base = load_bias;
    plan.start_code = start_code + load_bias;
    plan.end_code = end_code + load_bias;
    plan.start_data = start_data + load_bias;
    plan.end_data = end_data + load_bias;
    return true;
  }

  // Where load_elf_interp() maps an ET_DYN interpreter's first segment: at its
  // own address when the program has no load bias and the range is free,
  // else top-down below mmap_base. nullopt: no room.
  std::optional<std::uint64_t> first_interp_addr(const elf::ProgramHeader& p, std::uint64_t total) {
    const std::uint64_t hint = load_bias ? 0 : p.vaddr;
    const std::uint64_t hstart = page_start(hint);
    std::uint64_t addr = hint;
    if (!hint || hstart < facts.mmap_min_addr || hstart + total > lim.task_size ||
        as.overlaps(hstart, hstart + total)) {
      auto a = as.top_down(total, mmap_base, facts.mmap_min_addr);
      if (!a) return std::nullopt;
      addr = *a + page_offset(p.vaddr);
    }
    if (total >= kThpSize && !req.dice) bias_known = false;
    return addr;
  }

  // load_elf_interp(): the interpreter's PT_LOADs, the first of an ET_DYN one
  // placed like an mmap(), the rest MAP_FIXED at their offsets from it; the
  // entry becomes the interpreter's.
  void map_interp_segments() {
    const auto& ih = interp->h;
    const std::string& iname = interp->file->path;
    std::uint64_t load_addr = 0;
    bool set = false;
    const std::uint64_t total = page_align(total_mapping_size(interp->ph));
    for (const auto& p : interp->ph) {
      if (p.type != PT_LOAD || dead) continue;
      std::uint64_t addr = load_addr + p.vaddr;  // MAP_FIXED
      if (ih.type != ET_EXEC && !set) {
        auto a = first_interp_addr(p, total);
        if (!a) {
          segv("load interpreter", iname, "no room for the interpreter", "");
          break;
        }
        addr = *a;
      }
      std::uint64_t map_addr = 0;
      if (!elf_load(*interp, p, addr, false, "interp_base", &map_addr)) break;
      if (!set && ih.type == ET_DYN) {
        load_addr = map_addr - page_start(p.vaddr);
        set = true;
      }
      if (!segment_fits(p, load_addr + p.vaddr)) {
        segv("interpreter segment size check", iname, "a PT_LOAD of the interpreter does not fit (ENOMEM)",
             "point PT_INTERP at a real dynamic linker");
        break;
      }
    }
    interp_base = load_addr;
    entry = load_addr + ih.entry;
    plan.entry_in_interp = true;
    plan.entry_offset = ih.entry;
    plan.interp_randomized = randomize && ih.type == ET_DYN;
    plan.interp_base = interp_base;
  }

  // load_elf_interp()'s refusals before it maps anything: an e_type that is
  // neither ET_EXEC nor ET_DYN, no PT_LOAD at all.
  bool interp_loadable() {
    const std::string& iname = interp->file->path;
    if (interp->h.type != ET_EXEC && interp->h.type != ET_DYN) {
      segv("load interpreter", iname,
           "the ELF interpreter " + iname + " has e_type " + elf::type_name(interp->h.type) + ", not ET_EXEC or ET_DYN",
           "point PT_INTERP at a real dynamic linker");
      return false;
    }
    if (!total_mapping_size(interp->ph)) {
      segv("load interpreter", iname, "the ELF interpreter " + iname + " has no PT_LOAD segment",
           "point PT_INTERP at a real dynamic linker");
      return false;
    }
    return true;
  }

  // load_elf_binary() with an interpreter calls load_elf_interp(); either
  // way the entry must then pass BAD_ADDR(elf_entry).
  bool load_elf_interp() {
    entry = e_entry;
    if (!interp) plan.entry_offset = main.h.entry;
    else if (interp_loadable()) map_interp_segments();
    if (!dead && entry >= lim.task_size)
      segv("entry point", plan.entry_in_interp ? *plan.interp : plan.exe,
           "entry point " + hex(entry) + " lies beyond the user address space", "fix e_entry");
    return !dead;
  }

  // arch/x86/entry/vdso/vma.c arch_setup_additional_pages() -> map_vdso():
  // [vvar] then [vdso], top-down below mmap_base. The 32-bit vDSO image is
  // assumed to have the 64-bit one's size (both are two pages on current
  // kernels).
  void arch_setup_additional_pages() {
    vdso_addr = hooks.vdso_base.value_or(0);
    have_vdso = hooks.vdso_base.has_value();
    if (have_vdso || !facts.vdso || !facts.vdso_size) return;
    auto a = as.top_down(facts.vvar_size + facts.vdso_size, mmap_base, facts.mmap_min_addr);
    if (!a) return;
    vdso_addr = *a + facts.vvar_size;
    have_vdso = true;
    as.map_fixed({*a, *a + facts.vvar_size, PROT_READ, "[vvar]", 0, false, "mmap_base", ""});
    as.map_fixed({vdso_addr, vdso_addr + facts.vdso_size, PROT_READ | PROT_EXEC, "[vdso]", 0, false, "mmap_base", ""});
  }

  // load_elf_binary() after create_elf_tables(): mm->brk at the end of the
  // highest segment, or ELF_ET_DYN_BASE for a static PIE / loader; then
  // arch_randomize_brk() -> randomize_page(brk, 1 GiB; 32 MiB for ia32).
  void set_brk() {
    bool brk_moved = false;
    if (main.h.type == ET_DYN && !interp) {
      elf_brk = lim.et_dyn_base;
      brk_moved = true;
      plan.brk_rule = "static PIE / loader: brk moved to ELF_ET_DYN_BASE";
    } else {
      plan.brk_rule = "end of the highest segment, page aligned";
    }
    brk = page_align(elf_brk);
    brk_random = randomize && facts.randomize_va_space > 1;
    if (brk_random) {
      if (!brk_moved) brk += kPage;
      const std::uint64_t range_pages = (main.ia32 ? 0x02000000ull : 0x40000000ull) >> 12;
      brk += (dice.brk_rnd_pages % range_pages) << 12;
      plan.brk_rule += "; then a random page within 1 GiB above (randomize_va_space=2)";
    }
  }

  // create_elf_tables(): the auxiliary vector, ARCH_DLINFO (64-bit) or
  // ARCH_DLINFO_IA32 (compat) first.
  std::vector<Aux> auxv_entries() const {
    std::vector<Aux> v;
    const bool exe_known = main.h.type == ET_EXEC || exact;
    if (main.ia32 && have_vdso) v.push_back({AT_SYSINFO, std::nullopt, "__kernel_vsyscall in the 32-bit vDSO"});
    if (have_vdso) v.push_back({AT_SYSINFO_EHDR, known(exact && bias_known, vdso_addr), "vDSO base"});
    v.push_back({AT_MINSIGSTKSZ, facts.minsigstksz, "signal frame size (get_sigframe_size())"});
    v.push_back({AT_HWCAP, facts.hwcap, "CPUID(1).EDX"});
    v.push_back({AT_PAGESZ, kPage, ""});
    v.push_back({AT_CLKTCK, 100, "CLOCKS_PER_SEC"});
    v.push_back({AT_PHDR, known(exe_known && bias_known, phdr_addr),
                 !phdr_covered ? "no PT_LOAD covers e_phoff: 0 + load bias"
                               : "program headers as mapped (exec_base + " + hex(phdr_addr - load_bias) + ")"});
    v.push_back({AT_PHENT, main.ia32 ? 32u : 56u, "sizeof(Elf_Phdr), not e_phentsize"});
    v.push_back({AT_PHNUM, main.h.phnum, ""});
    v.push_back({AT_BASE,
                 interp ? known((exact || !plan.interp_randomized) && bias_known, interp_base)
                        : std::optional<std::uint64_t>(0),
                 interp ? "interpreter load address" : "no interpreter"});
    v.push_back({AT_FLAGS, b.preserve_argv0 ? 1u : 0u, b.preserve_argv0 ? "AT_FLAGS_PRESERVE_ARGV0" : ""});
    v.push_back({AT_ENTRY, known(exe_known && bias_known, e_entry), "the program's entry, even with an interpreter"});
    v.push_back({AT_UID, nc.uid, ""});
    v.push_back({AT_EUID, nc.euid, nc.euid != nc.uid ? nc.why : ""});
    v.push_back({AT_GID, nc.gid, ""});
    v.push_back({AT_EGID, nc.egid, ""});
    v.push_back({AT_SECURE, nc.secure ? 1u : 0u, nc.secure ? nc.why : ""});
    v.push_back({AT_RANDOM, known(exact, u_random), "16 random bytes below the platform string"});
    v.push_back({AT_HWCAP2, facts.hwcap2, ""});
    v.push_back({AT_EXECFN, known(exact, top - kTopPad - (b.filename.size() + 1)),
                 "\"" + b.filename + "\" at the top of the stack"});
    v.push_back({AT_PLATFORM, known(exact, u_platform), "\"" + platform + "\""});
    if (b.execfd) v.push_back({AT_EXECFD, std::nullopt, "fd of the binary (binfmt_misc O)"});
    if (facts.rseq_auxv) {
      v.push_back({AT_RSEQ_FEATURE_SIZE, 28, "offsetof(struct rseq, end)"});
      v.push_back({AT_RSEQ_ALIGN, 32, ""});
    }
    v.push_back({AT_NULL, 0, ""});
    return v;
  }

  // explain's top-down picture of the initial stack; addresses relative to
  // stack_top when they are random.
  std::vector<std::string> describe_stack() const {
    const std::uint64_t argc = b.argv.size(), envc = b.envp.size();
    auto at = [&](std::uint64_t a) { return exact ? hex(a) : "stack_top-" + hex(top - a); };
    std::vector<std::string> lines = {
        at(top - kTopPad) + "  8 zero bytes",
        at(top - kTopPad - (b.filename.size() + 1)) + "  execfn \"" + b.filename + "\"",
        at(strings_low) + "  argv strings (" + std::to_string(argc) + "), then envp strings (" + std::to_string(envc) +
            ")",
        at(align_p) + "  " + (exact ? std::to_string(strings_low - align_p) + " bytes" : std::string("up to 8 KiB")) +
            " of arch_align_stack() gap, never written",
        at(u_platform) + "  platform string",
        at(u_random) + "  16 random bytes (AT_RANDOM)",
        at(rsp + items * lim.word) + "  auxv: " + std::to_string(aux.size()) + " entries",
        at(rsp + 8) + "  argv[] and envp[] pointers",
        at(rsp) + "  argc = " + std::to_string(argc) + "   <- rsp at entry (16-byte aligned)",
    };
    if (randomize && !exact)
      lines.push_back(
          "stack_top is 0x7ffffffff000 minus up to 16 GiB (random), then up to 8 KiB of "
          "random padding below the strings");
    return lines;
  }

  // create_elf_tables() output, byte for byte, without the gap it skips.
  void write_stack_image() {
    std::vector<std::uint8_t> tables(align_p - rsp, 0), strings(top - strings_low, 0);
    auto put64 = [&](std::uint64_t addr, std::uint64_t v) {
      for (int i = 0; i < 8; ++i)
        tables[addr - rsp + static_cast<std::uint64_t>(i)] = static_cast<std::uint8_t>(v >> (8 * i));
    };
    auto put_str = [](std::vector<std::uint8_t>& piece, std::uint64_t offset, const std::string& str) {
      std::copy(str.begin(), str.end(), piece.begin() + static_cast<long>(offset));
      piece[offset + str.size()] = 0;
    };
    std::uint64_t a = strings_low;
    std::vector<std::uint64_t> argv_ptrs, envp_ptrs;
    for (const auto& str : b.argv) put_str(strings, a - strings_low, str), argv_ptrs.push_back(a), a += str.size() + 1;
    for (const auto& str : b.envp) put_str(strings, a - strings_low, str), envp_ptrs.push_back(a), a += str.size() + 1;
    put_str(strings, a - strings_low, b.filename);
    put_str(tables, u_platform - rsp, platform);
    std::copy(dice.random_bytes.begin(), dice.random_bytes.end(), tables.begin() + static_cast<long>(u_random - rsp));
    std::uint64_t w = rsp;
    put64(w, b.argv.size()), w += 8;
    for (auto v : argv_ptrs) put64(w, v), w += 8;
    put64(w, 0), w += 8;
    for (auto v : envp_ptrs) put64(w, v), w += 8;
    put64(w, 0), w += 8;
    for (const auto& x : aux) put64(w, x.type), put64(w + 8, x.value.value_or(0)), w += 16;
    plan.stack_tables = std::move(tables);
    plan.stack_strings_start = strings_low;
    plan.stack_strings = std::move(strings);
  }

  // create_elf_tables(): below the strings, arch_align_stack()'s gap, the
  // platform string, AT_RANDOM's bytes, then auxv, envp[], argv[] and argc,
  // 16-byte aligned. The frame must fit under RLIMIT_STACK (the stack grows
  // by faults, checked in acct_stack_growth()).
  bool create_elf_tables() {
    align_p = (strings_low - rnd(dice.tables_align)) & ~0xfull;
    u_platform = align_p - (platform.size() + 1);
    u_random = u_platform - 16;
    aux = auxv_entries();
    const std::uint64_t ei_words = aux.size() * 2;
    const std::uint64_t argc = b.argv.size(), envc = b.envp.size();
    items = (argc + 1) + (envc + 1) + 1;
    const std::uint64_t sp = u_random - ei_words * lim.word;
    rsp = (sp - items * lim.word) & ~0xfull;
    frame = top - rsp;
    if (frame > rlim_stack) {
      segv("initial stack", plan.exe,
           "the initial stack frame (" + std::to_string(frame) +
               " bytes: strings, auxv and pointers) is larger than "
               "RLIMIT_STACK (" +
               std::to_string(rlim_stack) + " bytes); writing it faults",
           "raise the stack limit (ulimit -s) or pass fewer/shorter arguments");
      return false;
    }
    plan.stack_strings_bytes = top - strings_low;
    plan.stack_pointers_bytes = sp - rsp + ei_words * lim.word;
    plan.execfn = b.filename;
    if (req.explain) plan.stack_layout = describe_stack();
    for (auto& a : aux)
      plan.auxv.push_back({a.type, req.explain ? auxv_name(a.type) : std::string(), a.value,
                           req.explain ? std::move(a.describe) : std::string()});
    if (exact) plan.rsp = rsp;
    plan.auxv_addr = rsp + items * lim.word;
    plan.arg_start = strings_low;
    std::uint64_t argv_bytes = 0;
    for (const auto& a : b.argv) argv_bytes += a.size() + 1;
    plan.arg_end = plan.env_start = strings_low + argv_bytes;
    plan.env_end = top - kTopPad - (b.filename.size() + 1);
    if (exact && req.want_stack_image && !main.ia32) write_stack_image();
    return true;
  }

  // start_thread(): what the first instruction meets. execve has succeeded;
  // a stack too small for the first calls, an entry in no executable
  // mapping, or an entry page past the end of the file kill the process at once.
  void start_thread() {
    plan.entry =
        known((exact || !(plan.entry_in_interp ? plan.interp_randomized : (main.h.type == ET_DYN && randomize))) &&
                  bias_known,
              entry);
    plan.brk = known((exact || (!brk_random && main.h.type == ET_EXEC)) && bias_known, brk);
    plan.stack_randomized = randomize && !exact;
    plan.zero_ranges = zero_ranges;
    const Vma* at_entry = as.find(entry);
    if (rlim_stack - frame < kStackRoomMin) {
      ctx.kill(SIGSEGV, true, "stack room", plan.exe,
               "only " + std::to_string(rlim_stack - frame) + " bytes of stack are left under RLIMIT_STACK (" +
                   std::to_string(rlim_stack) + ") below the initial frame; the program's first calls fault",
               "raise the stack limit (ulimit -s) or pass fewer/shorter arguments");
      ctx.out.rules_applied.push_back("stack room below " + std::to_string(kStackRoomMin) +
                                      " bytes is predicted to fault at once (how much a program needs is its own "
                                      "business; this is a heuristic)");
    } else if (!at_entry || !(at_entry->prot & PROT_EXEC)) {
      const std::string where =
          at_entry ? "a non-executable mapping (" + prot_string(at_entry->prot) + " " + at_entry->object + ")"
                   : "no mapping at all";
      ctx.kill(SIGSEGV, true, "entry point", plan.entry_in_interp ? *plan.interp : plan.exe,
               "execve succeeds, but the entry point " + hex(entry) + " is in " + where +
                   ", so the process dies with SIGSEGV at its first instruction",
               "fix e_entry or the PT_LOAD segments (the entry must lie in an executable segment)");
    } else if (at_entry->file) {
      const std::uint64_t off = at_entry->off + (page_start(entry) - at_entry->start);
      const ExecFile& ef = plan.entry_in_interp ? *interp->file : *main.file;
      if (off >= page_align(static_cast<std::uint64_t>(ef.st.st_size)))
        ctx.kill(SIGBUS, true, "entry point", ef.path,
                 "execve succeeds, but the entry point " + hex(entry) +
                     " is in a page past the end of the file, so "
                     "the first instruction fetch raises SIGBUS",
                 "the file is truncated");
    }
  }

  // Whether a mapping moves with a random draw that is not known (it is then
  // given relative to its region's base).
  bool moves(const Vma& v) const {
    return (!exact &&
            ((v.region == "exec_base" && randomize) || (v.region == "interp_base" && plan.interp_randomized) ||
             (v.region == "mmap_base" && randomize) || (v.region == "stack_top" && randomize))) ||
           ((v.region == "interp_base" || v.region == "mmap_base" || v.region == "exec_base") && !bias_known);
  }

  // The result: the mappings as /proc/PID/maps would show them after the
  // exec, the empty heap at brk, and (for the caller that asked) a duplicate
  // of each mapped file's descriptor.
  void export_mappings() {
    if (hooks.mapped_files) {
      for (const ElfImage* img : {&main, interp}) {
        if (!img || !img->file) continue;
        const int fd = fcntl(img->file->fd.get(), F_DUPFD_CLOEXEC, 0);
        if (fd >= 0) hooks.mapped_files->emplace_back(img->file->path, fd);
      }
    }
    for (const auto& v : as.vmas()) {
      if (v.start == v.end) continue;
      Mapping m{v.object, v.start, v.end, v.prot, v.off, v.file, !moves(v), "", v.note};
      if (!m.address_known) {
        const std::uint64_t base = v.region == "exec_base"     ? load_bias
                                   : v.region == "interp_base" ? interp_base
                                   : v.region == "stack_top"   ? top
                                                               : mmap_base;
        m.base_symbol = v.region;
        m.start = v.start - base;
        m.end = v.end - base;
      }
      plan.mappings.push_back(std::move(m));
    }
    if (!exact && (brk_random || (main.h.type == ET_DYN && randomize)))
      plan.mappings.push_back({"[heap]", 0, 0, PROT_READ | PROT_WRITE, 0, false, false, "brk", "grows from brk"});
    else
      plan.mappings.push_back(
          {"[heap]", brk, brk, PROT_READ | PROT_WRITE, 0, false, true, "", "empty until brk() grows it"});
  }
};

}  // namespace

// load_elf_binary() from begin_new_exec() to start_thread(), in the kernel's
// order. A stage that kills the task ends the list; the plan keeps what was
// decided up to there.
void build_layout(Context& ctx, Bprm& b, const ElfImage& main, const ElfImage* interp, bool exec_stack) {
  ImageMapper m(ctx, b, main, interp);
  m.begin_new_exec();
  m.randomize_stack_top();
  m.arch_pick_mmap_layout();
  m.setup_arg_pages(exec_stack);
  if (m.map_program() && m.load_elf_interp()) {
    m.arch_setup_additional_pages();
    m.set_brk();
    if (m.create_elf_tables()) {
      m.start_thread();
      m.export_mappings();
    }
  }
  ctx.out.plan = std::move(m.plan);
}

}  // namespace procforge::exec
