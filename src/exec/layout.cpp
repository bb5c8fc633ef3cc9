#include "exec/layout.hpp"
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

struct Loader {
  Context& ctx;
  Bprm& b;
  Limits lim;
  AddressSpace as;
  bool randomize;
  std::uint64_t mmap_base;
  bool dead = false;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> zero_ranges;

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

  // security_mmap_addr() / get_unmapped_area(MAP_FIXED) checks of one mapping.
  bool can_map_at(std::uint64_t addr, std::uint64_t len, const std::string& object, const std::string& what) {
    if (len > lim.task_size || addr > lim.task_size - len) {
      segv("map " + what, object, what + " at " + hex(addr) + " (+" + hex(len) + ") lies beyond the user address space",
           "relink the program at a lower address");
      return false;
    }
    if (addr < ctx.facts.mmap_min_addr && !ctx.req.creds.cap_sys_rawio) {
      segv("map " + what, object,
           what + " at " + hex(addr) + " is below vm.mmap_min_addr (" + hex(ctx.facts.mmap_min_addr) +
               ") and the caller lacks CAP_SYS_RAWIO",
           "link the program at a normal address (e.g. 0x400000)");
      return false;
    }
    return true;
  }

  // elf_load(): file pages, then zero the tail of the last file page, then
  // anonymous pages up to p_memsz.
  bool elf_load(const ElfImage& img, const elf::ProgramHeader& p, std::uint64_t addr, bool noreplace,
                const std::string& region, std::uint64_t* map_addr) {
    const std::string& obj = img.file->path;
    const int prot = prot_of(p.flags);
    std::uint64_t zero_start, zero_end;
    if (p.filesz) {
      const std::uint64_t size = page_align(p.filesz + page_offset(p.vaddr));
      const std::uint64_t start = page_start(addr);
      if (page_offset(p.offset - page_offset(p.vaddr))) {
        segv("map segment", obj,
             "PT_LOAD at file offset " + hex(p.offset) + " and address " + hex(p.vaddr) +
                 " do not agree modulo the page size, so mmap() refuses it (EINVAL)",
             "relink: p_offset and p_vaddr must be congruent modulo 4096");
        return false;
      }
      if (!can_map_at(start, size, obj, "segment")) return false;
      if (noreplace && as.overlaps(start, start + size)) {
        segv("map segment", obj,
             "segment at " + hex(start) +
                 " collides with an existing mapping (MAP_FIXED_NOREPLACE: EEXIST; the "
                 "kernel logs \"Uhuuh, elf segment at ... requested but the memory is mapped already\")",
             "relink the program at an address that does not overlap the stack");
        return false;
      }
      as.map_fixed({start, start + size, prot, obj, p.offset - page_offset(p.vaddr), true, region, ""});
      *map_addr = start;
      zero_start = start + page_offset(p.vaddr) + p.filesz;
      zero_end = start + page_offset(p.vaddr) + p.memsz;
      if (p.memsz > p.filesz && page_offset(zero_start)) {
        // padzero(): clear_user() to the end of the page. It faults on a page
        // past the end of the file; that only matters for writable segments.
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
      }
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

  bool size_checks(const elf::ProgramHeader& p, std::uint64_t k, const std::string& obj) {
    const std::uint64_t ts = lim.task_size;
    if (k >= ts || p.filesz > p.memsz || p.memsz > ts || ts - p.memsz < k) {
      std::string why = p.filesz > p.memsz ? "PT_LOAD has p_filesz " + hex(p.filesz) + " > p_memsz " + hex(p.memsz)
                                           : "PT_LOAD at " + hex(p.vaddr) + " with p_memsz " + hex(p.memsz) +
                                                 " does not fit in the user address space";
      segv("segment size check", obj, why, "relink the program; its program headers are corrupt");
      return false;
    }
    return true;
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
};

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
  if (c.uid != 0 && may_suid) filecaps = fgetxattr(f.fd, "security.capability", nullptr, 0) > 0;
  n.secure = n.euid != c.uid || n.egid != c.gid || filecaps;
  if (filecaps) n.per_clear = true;  // cap_bprm_creds_from_file(): privileges gained
  if (n.euid != c.euid) n.why = "set-user-ID file";
  else if (n.egid != c.egid) n.why = "set-group-ID file";
  else if (filecaps) n.why = "file capabilities";
  else if (n.secure) n.why = "the caller's effective and real ids differ";
  return n;
}

}  // namespace

void build_layout(Context& ctx, Bprm& b, const ElfImage& main, const ElfImage* interp, bool exec_stack) {
  const Request& req = ctx.req;
  const SystemFacts& facts = ctx.facts;
  Plan plan;
  plan.exe = main.file->path;
  plan.exe_type = main.h.type;
  if (interp) plan.interp = interp->file->path;
  plan.executable_stack = exec_stack;

  Limits lim = main.ia32 ? Limits{true, kTaskSizeIa32, kEtDynBaseIa32, kTaskSizeIa32, 4}
                         : Limits{false, kTaskSize64, kEtDynBase64, kTaskSize64, 8};
  // PF_RANDOMIZE: personality ADDR_NO_RANDOMIZE or randomize_va_space=0 turn
  // it off, but a set-id exec clears ADDR_NO_RANDOMIZE first
  // (bprm_fill_uid() adds PER_CLEAR_ON_SETID; begin_new_exec() applies it).
  NewCreds nc = new_creds(ctx, *main.file);
  const bool randomize = (!req.addr_no_randomize || nc.per_clear) && facts.randomize_va_space != 0;
  if (req.addr_no_randomize && nc.per_clear)
    ctx.out.rules_applied.push_back("set-id program: the kernel clears ADDR_NO_RANDOMIZE (PER_CLEAR_ON_SETID)");
  // With dice every random draw is known, so every address is exact.
  const Dice dice = req.dice.value_or(Dice{});
  const bool exact = !randomize || req.dice.has_value();
  auto rnd = [&](std::uint64_t v) { return randomize ? v : 0; };
  // randomize_stack_top(), then setup_arg_pages(): arch_align_stack() and PAGE_ALIGN.
  const std::uint64_t top =
      page_align((page_align(lim.stack_top) - (rnd(dice.stack_rnd_pages) << 12) - rnd(dice.setup_align)) & ~0xfull);
  plan.stack_top = top;
  if (exec_stack) ctx.out.rules_applied.push_back("PT_GNU_STACK asks for an executable stack (the kernel warns once)");

  // Stack limit snapshot, clamped for secure exec (begin_new_exec()).
  std::uint64_t rlim_stack = req.rlimit_stack;
  if (nc.secure) rlim_stack = std::min<std::uint64_t>(rlim_stack, 8ull << 20);

  // arch_pick_mmap_layout() -> mmap_base(): the top of the mmap area.
  std::uint64_t gap = rlim_stack;
  const std::uint64_t pad = (randomize ? ((main.ia32 ? 0x7ffull : 0x3fffffull) << 12) : 0) + kStackGuardGap;
  if (gap + pad > gap) gap += pad;
  // arch_pick_mmap_layout() keeps a 32-bit base too; a compat task uses it.
  const std::uint64_t mmap_task = main.ia32 ? kTaskSizeIa32 : kTaskSize64;
  gap = std::clamp<std::uint64_t>(gap, 128ull << 20, mmap_task / 6 * 5);
  Loader L{ctx,       b,
           lim,       {},
           randomize, dice.mmap_base ? *dice.mmap_base : page_align(mmap_task - gap - (rnd(dice.mmap_rnd_pages) << 12)),
           false,     {}};

  // The stack VMA as setup_arg_pages() leaves it: strings at the top.
  const std::uint64_t strings_low = top - kTopPad - b.used;
  {
    std::uint64_t vm_start = page_start(strings_low);
    std::uint64_t size = top - vm_start;
    std::uint64_t base = size + kStackExpand > rlim_stack ? top - rlim_stack : vm_start - kStackExpand;
    plan.stack_vma_start = base;
    L.as.map_fixed(
        {base, top, PROT_READ | PROT_WRITE | (exec_stack ? PROT_EXEC : 0), "[stack]", 0, false, "stack_top", ""});
  }
  // A vDSO that stays where it is (the user-space loader keeps its own).
  if (dice.vdso_base && facts.vdso)
    L.as.map_fixed({*dice.vdso_base - facts.vvar_size, *dice.vdso_base + facts.vdso_size, PROT_READ, "[vvar+vdso]", 0,
                    false, "", ""});

  // Program segments (load_elf_binary() PT_LOAD loop).
  std::uint64_t load_bias = 0, phdr_addr = 0, elf_brk = 0;
  bool first = true, bias_known = true, phdr_covered = false;
  std::uint64_t start_code = UINT64_MAX, end_code = 0, start_data = 0, end_data = 0;
  std::string main_region = main.h.type == ET_DYN ? "exec_base" : "";
  for (const auto& p : main.ph) {
    if (p.type != PT_LOAD || L.dead) continue;
    bool noreplace = false;
    std::uint64_t total = 0;
    if (first && main.h.type == ET_EXEC) {
      noreplace = true;
    } else if (first && main.h.type == ET_DYN) {
      total = Loader::total_mapping_size(main.ph);
      const std::uint64_t align = Loader::maximum_alignment(main.ph);
      plan.exe_align = align;
      if (interp) {
        // A PIE: ELF_ET_DYN_BASE plus arch_mmap_rnd(), aligned.
        load_bias = lim.et_dyn_base + (rnd(dice.pie_rnd_pages) << 12);
        if (align) load_bias &= ~(align - 1);
        noreplace = true;
        plan.exe_randomized = randomize;
      } else {
        // A loader or static PIE: placed like an mmap() at address 0.
        main_region = "mmap_base";
        if (align > kPage) {
          auto a = L.as.top_down(page_align(total), L.mmap_base, facts.mmap_min_addr);
          load_bias = a ? *a & ~(align - 1) : 0;
          noreplace = true;
        } else {
          // The kernel maps the first segment at ELF_PAGESTART(0 - p_vaddr)
          // + p_vaddr: a hint of 0 (or past TASK_SIZE), so it lands top-down
          // at `a` whatever its p_vaddr, and the bias becomes
          // a - ELF_PAGESTART(p_vaddr) (load_elf_binary(), first_pt_load).
          // The page_start() below turns this value into that bias.
          auto a = L.as.top_down(page_align(total), L.mmap_base, facts.mmap_min_addr);
          load_bias = a.value_or(0) + page_offset(p.vaddr);
        }
        if (page_align(total) >= kThpSize && !req.dice) bias_known = false;  // file THP alignment may move it
        plan.exe_randomized = randomize;
      }
      load_bias = page_start(load_bias - p.vaddr);
    }
    std::uint64_t map_addr = 0;
    if (!L.elf_load(main, p, load_bias + p.vaddr, noreplace && first, main_region, &map_addr)) break;
    (void)total;
    first = false;
    if (p.offset <= main.h.phoff && main.h.phoff < p.offset + p.filesz) {
      phdr_addr = main.h.phoff - p.offset + p.vaddr;
      phdr_covered = true;
    }
    if (!L.size_checks(p, p.vaddr, main.file->path)) break;
    elf_brk = std::max(elf_brk, p.vaddr + p.memsz);
    // mm->start_code/end_code/start_data/end_data as load_elf_binary() sets them.
    if ((p.flags & PF_X) && p.vaddr < start_code) start_code = p.vaddr;
    if (start_data < p.vaddr) start_data = p.vaddr;
    if ((p.flags & PF_X) && end_code < p.vaddr + p.filesz) end_code = p.vaddr + p.filesz;
    if (end_data < p.vaddr + p.filesz) end_data = p.vaddr + p.filesz;
  }
  if (L.dead) {
    ctx.out.plan = std::move(plan);
    return;
  }
  const std::uint64_t e_entry = main.h.entry + load_bias;
  phdr_addr += load_bias;
  elf_brk += load_bias;
  plan.exe_base = load_bias;
  plan.start_code = start_code + load_bias;
  plan.end_code = end_code + load_bias;
  plan.start_data = start_data + load_bias;
  plan.end_data = end_data + load_bias;

  // The interpreter (load_elf_interp()).
  std::uint64_t entry = e_entry, interp_base = 0;
  if (interp) {
    const auto& ih = interp->h;
    const std::string& iname = interp->file->path;
    if (ih.type != ET_EXEC && ih.type != ET_DYN) {
      L.segv("load interpreter", iname,
             "the ELF interpreter " + iname + " has e_type " + elf::type_name(ih.type) + ", not ET_EXEC or ET_DYN",
             "point PT_INTERP at a real dynamic linker");
    } else if (!Loader::total_mapping_size(interp->ph)) {
      L.segv("load interpreter", iname, "the ELF interpreter " + iname + " has no PT_LOAD segment",
             "point PT_INTERP at a real dynamic linker");
    } else {
      std::uint64_t load_addr = 0;
      bool set = false;
      const std::uint64_t total = page_align(Loader::total_mapping_size(interp->ph));
      for (const auto& p : interp->ph) {
        if (p.type != PT_LOAD || L.dead) continue;
        std::uint64_t addr;
        if (ih.type == ET_EXEC || set) {
          addr = load_addr + p.vaddr;  // MAP_FIXED
        } else {
          // Hint: 0 when the program has a load bias, else the segment's own
          // address; either way the area is found top-down below mmap_base.
          std::uint64_t hint = load_bias ? 0 : p.vaddr;
          std::uint64_t hstart = page_start(hint);
          if (hint && hstart >= facts.mmap_min_addr && hstart + total <= lim.task_size &&
              !L.as.overlaps(hstart, hstart + total)) {
            addr = hint;
          } else {
            auto a = L.as.top_down(total, L.mmap_base, facts.mmap_min_addr);
            if (!a) {
              L.segv("load interpreter", iname, "no room for the interpreter", "");
              break;
            }
            addr = *a + page_offset(p.vaddr);
          }
          if (total >= kThpSize && !req.dice) bias_known = false;
        }
        std::uint64_t map_addr = 0;
        if (!L.elf_load(*interp, p, addr, false, "interp_base", &map_addr)) break;
        if (!set && ih.type == ET_DYN) {
          load_addr = map_addr - page_start(p.vaddr);
          set = true;
        }
        const std::uint64_t k = load_addr + p.vaddr;
        if (k >= lim.task_size || p.filesz > p.memsz || p.memsz > lim.task_size || lim.task_size - p.memsz < k) {
          L.segv("interpreter segment size check", iname, "a PT_LOAD of the interpreter does not fit (ENOMEM)",
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
  } else {
    plan.entry_offset = main.h.entry;
  }
  if (!L.dead && entry >= lim.task_size)
    L.segv("entry point", plan.entry_in_interp ? *plan.interp : plan.exe,
           "entry point " + hex(entry) + " lies beyond the user address space", "fix e_entry");
  if (L.dead) {
    ctx.out.plan = std::move(plan);
    return;
  }

  // The vDSO (ARCH_SETUP_ADDITIONAL_PAGES -> map_vdso(), top-down).
  std::uint64_t vdso_addr = dice.vdso_base.value_or(0);
  bool have_vdso = dice.vdso_base.has_value();
  // The 32-bit vDSO image is assumed to have the 64-bit one's size (both are
  // two pages on current kernels).
  if (!have_vdso && facts.vdso && facts.vdso_size) {
    auto a = L.as.top_down(facts.vvar_size + facts.vdso_size, L.mmap_base, facts.mmap_min_addr);
    if (a) {
      vdso_addr = *a + facts.vvar_size;
      have_vdso = true;
      L.as.map_fixed({*a, *a + facts.vvar_size, PROT_READ, "[vvar]", 0, false, "mmap_base", ""});
      L.as.map_fixed(
          {vdso_addr, vdso_addr + facts.vdso_size, PROT_READ | PROT_EXEC, "[vdso]", 0, false, "mmap_base", ""});
    }
  }

  // brk (load_elf_binary() after create_elf_tables()).
  bool brk_moved = false;
  if (main.h.type == ET_DYN && !interp) {
    elf_brk = lim.et_dyn_base;
    brk_moved = true;
    plan.brk_rule = "static PIE / loader: brk moved to ELF_ET_DYN_BASE";
  } else {
    plan.brk_rule = "end of the highest segment, page aligned";
  }
  std::uint64_t brk = page_align(elf_brk);
  const bool brk_random = randomize && facts.randomize_va_space > 1;
  if (brk_random) {
    if (!brk_moved) brk += kPage;
    // arch_randomize_brk() -> randomize_page(brk, 1 GiB; 32 MiB for ia32).
    const std::uint64_t range_pages = (main.ia32 ? 0x02000000ull : 0x40000000ull) >> 12;
    brk += (dice.brk_rnd_pages % range_pages) << 12;
    plan.brk_rule += "; then a random page within 1 GiB above (randomize_va_space=2)";
  }

  // create_elf_tables(): the initial stack.
  std::uint64_t p = strings_low;                                   // bprm->p after all strings
  std::uint64_t align_p = (p - rnd(dice.tables_align)) & ~0xfull;  // arch_align_stack()
  const std::string platform = main.ia32 ? "i686" : "x86_64";      // ELF_PLATFORM / COMPAT_ELF_PLATFORM
  std::uint64_t u_platform = align_p - (platform.size() + 1);
  std::uint64_t u_random = u_platform - 16;
  struct Aux {
    std::uint64_t type;
    std::optional<std::uint64_t> value;
    std::string describe;
  };
  std::vector<Aux> aux;
  const bool stack_known = exact;
  const bool exe_known = main.h.type == ET_EXEC || exact;
  auto known = [](bool k, std::uint64_t v) { return k ? std::optional<std::uint64_t>(v) : std::nullopt; };
  // ARCH_DLINFO (64-bit) or ARCH_DLINFO_IA32 (compat) come first.
  if (main.ia32 && have_vdso) aux.push_back({AT_SYSINFO, std::nullopt, "__kernel_vsyscall in the 32-bit vDSO"});
  if (have_vdso) aux.push_back({AT_SYSINFO_EHDR, known(exact && bias_known, vdso_addr), "vDSO base"});
  aux.push_back({51 /* AT_MINSIGSTKSZ */, facts.minsigstksz, "signal frame size (get_sigframe_size())"});
  aux.push_back({AT_HWCAP, facts.hwcap, "CPUID(1).EDX"});
  aux.push_back({AT_PAGESZ, kPage, ""});
  aux.push_back({AT_CLKTCK, 100, "CLOCKS_PER_SEC"});
  aux.push_back({AT_PHDR, known(exe_known && bias_known, phdr_addr),
                 !phdr_covered ? "no PT_LOAD covers e_phoff: 0 + load bias"
                               : "program headers as mapped (exec_base + " + hex(phdr_addr - load_bias) + ")"});
  aux.push_back({AT_PHENT, main.ia32 ? 32u : 56u, "sizeof(Elf_Phdr), not e_phentsize"});
  aux.push_back({AT_PHNUM, main.h.phnum, ""});
  aux.push_back(
      {AT_BASE,
       interp ? known((exact || !plan.interp_randomized) && bias_known, interp_base) : std::optional<std::uint64_t>(0),
       interp ? "interpreter load address" : "no interpreter"});
  aux.push_back({AT_FLAGS, b.preserve_argv0 ? 1u : 0u, b.preserve_argv0 ? "AT_FLAGS_PRESERVE_ARGV0" : ""});
  aux.push_back({AT_ENTRY, known(exe_known && bias_known, e_entry), "the program's entry, even with an interpreter"});
  aux.push_back({AT_UID, nc.uid, ""});
  aux.push_back({AT_EUID, nc.euid, nc.euid != nc.uid ? nc.why : ""});
  aux.push_back({AT_GID, nc.gid, ""});
  aux.push_back({AT_EGID, nc.egid, ""});
  aux.push_back({AT_SECURE, nc.secure ? 1u : 0u, nc.secure ? nc.why : ""});
  aux.push_back({AT_RANDOM, known(stack_known, u_random), "16 random bytes below the platform string"});
  aux.push_back({AT_HWCAP2, facts.hwcap2, ""});
  aux.push_back({AT_EXECFN, known(stack_known, top - kTopPad - (b.filename.size() + 1)),
                 "\"" + b.filename + "\" at the top of the stack"});
  aux.push_back({AT_PLATFORM, known(stack_known, u_platform), "\"" + platform + "\""});
  if (b.execfd) aux.push_back({AT_EXECFD, std::nullopt, "fd of the binary (binfmt_misc O)"});
  if (facts.rseq_auxv) {
    aux.push_back({27 /* AT_RSEQ_FEATURE_SIZE */, 28, "offsetof(struct rseq, end)"});
    aux.push_back({28 /* AT_RSEQ_ALIGN */, 32, ""});
  }
  aux.push_back({AT_NULL, 0, ""});

  const std::uint64_t ei_words = aux.size() * 2;
  const std::uint64_t argc = b.argv.size(), envc = b.envp.size();
  const std::uint64_t items = (argc + 1) + (envc + 1) + 1;
  const std::uint64_t sp = u_random - ei_words * lim.word;
  const std::uint64_t rsp = (sp - items * lim.word) & ~0xfull;
  // The frame create_elf_tables() writes must fit under RLIMIT_STACK
  // (the stack grows by faults, checked in acct_stack_growth()).
  const std::uint64_t frame = top - rsp;
  if (frame > rlim_stack) {
    L.segv("initial stack", plan.exe,
           "the initial stack frame (" + std::to_string(frame) +
               " bytes: strings, auxv and pointers) is larger than "
               "RLIMIT_STACK (" +
               std::to_string(rlim_stack) + " bytes); writing it faults",
           "raise the stack limit (ulimit -s) or pass fewer/shorter arguments");
    ctx.out.plan = std::move(plan);
    return;
  }
  const bool starved = rlim_stack - frame < kStackRoomMin;
  plan.stack_strings_bytes = top - strings_low;
  plan.stack_pointers_bytes = sp - rsp + ei_words * lim.word;
  plan.execfn = b.filename;
  auto at = [&](std::uint64_t a) { return stack_known ? hex(a) : "stack_top-" + hex(top - a); };
  if (req.explain)
    plan.stack_layout = {
        at(top - kTopPad) + "  8 zero bytes",
        at(top - kTopPad - (b.filename.size() + 1)) + "  execfn \"" + b.filename + "\"",
        at(strings_low) + "  argv strings (" + std::to_string(argc) + "), then envp strings (" + std::to_string(envc) +
            ")",
        at(align_p) + "  " +
            (stack_known ? std::to_string(strings_low - align_p) + " bytes" : std::string("up to 8 KiB")) +
            " of arch_align_stack() gap, never written",
        at(u_platform) + "  platform string",
        at(u_random) + "  16 random bytes (AT_RANDOM)",
        at(rsp + items * lim.word) + "  auxv: " + std::to_string(aux.size()) + " entries",
        at(rsp + 8) + "  argv[] and envp[] pointers",
        at(rsp) + "  argc = " + std::to_string(argc) + "   <- rsp at entry (16-byte aligned)",
    };
  if (req.explain && randomize && !exact)
    plan.stack_layout.push_back(
        "stack_top is 0x7ffffffff000 minus up to 16 GiB (random), then up to 8 KiB of "
        "random padding below the strings");
  for (auto& a : aux)
    plan.auxv.push_back({a.type, req.explain ? auxv_name(a.type) : std::string(), a.value,
                         req.explain ? std::move(a.describe) : std::string()});

  // What the first instruction meets.
  plan.entry = known(
      (exact || !(plan.entry_in_interp ? plan.interp_randomized : (main.h.type == ET_DYN && randomize))) && bias_known,
      entry);
  plan.brk = known((exact || (!brk_random && main.h.type == ET_EXEC)) && bias_known, brk);
  plan.stack_randomized = randomize && !exact;
  plan.zero_ranges = L.zero_ranges;
  if (exact) plan.rsp = rsp;
  plan.auxv_addr = rsp + items * lim.word;
  plan.arg_start = strings_low;
  std::uint64_t argv_bytes = 0;
  for (const auto& a : b.argv) argv_bytes += a.size() + 1;
  plan.arg_end = plan.env_start = strings_low + argv_bytes;
  plan.env_end = top - kTopPad - (b.filename.size() + 1);
  if (exact && req.want_stack_image && !main.ia32) {
    // create_elf_tables() output, byte for byte, without the gap it skips.
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
    put64(w, argc), w += 8;
    for (auto v : argv_ptrs) put64(w, v), w += 8;
    put64(w, 0), w += 8;
    for (auto v : envp_ptrs) put64(w, v), w += 8;
    put64(w, 0), w += 8;
    for (const auto& x : aux) put64(w, x.type), put64(w + 8, x.value.value_or(0)), w += 16;
    plan.stack_tables = std::move(tables);
    plan.stack_strings_start = strings_low;
    plan.stack_strings = std::move(strings);
  }
  const Vma* at_entry = L.as.find(entry);
  if (starved) {
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

  if (req.mapped_files) {
    for (const ElfImage* img : {&main, interp}) {
      if (!img || !img->file) continue;
      const int fd = fcntl(img->file->fd, F_DUPFD_CLOEXEC, 0);
      if (fd >= 0) req.mapped_files->emplace_back(img->file->path, fd);
    }
  }
  for (const auto& v : L.as.vmas()) {
    if (v.start == v.end) continue;
    Mapping m;
    m.object = v.object;
    m.prot = v.prot;
    m.file_offset = v.off;
    m.file_backed = v.file;
    m.note = v.note;
    const bool moves =
        (!exact && ((v.region == "exec_base" && randomize) || (v.region == "interp_base" && plan.interp_randomized) ||
                    (v.region == "mmap_base" && randomize) || (v.region == "stack_top" && randomize))) ||
        ((v.region == "interp_base" || v.region == "mmap_base" || v.region == "exec_base") && !bias_known);
    m.address_known = !moves;
    m.start = v.start;
    m.end = v.end;
    if (moves) {
      std::uint64_t base = v.region == "exec_base"     ? load_bias
                           : v.region == "interp_base" ? interp_base
                           : v.region == "stack_top"   ? top
                                                       : L.mmap_base;
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
  ctx.out.plan = std::move(plan);
}

}  // namespace procforge::exec
