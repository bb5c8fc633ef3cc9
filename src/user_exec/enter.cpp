// The point of no return. What begin_new_exec() resets, done here with raw
// system calls (no allocation: this may run in a child right after fork()):
// signals blocked while the image is swapped, handlers flushed
// (kernel/signal.c flush_signal_handlers(): handlers to SIG_DFL, SIG_IGN kept,
// flags and masks cleared), the alternate signal stack disabled,
// close-on-exec fds closed (fs/file.c do_close_on_exec()), rseq unregistered
// (rseq_execve()); then the stub takes over.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "spawn/sys.hpp"
#include "user_exec/impl.hpp"

namespace procforge::user_exec {

namespace {

struct KernelSigaction {  // the rt_sigaction ABI on x86_64
  unsigned long handler, flags, restorer, mask;
};

// Raw system calls, -errno on failure: this runs in a fresh fork() child,
// where a first call through glibc's PLT would run the lazy binder (symbol
// lookups and a GOT write, that is copy-on-write faults, in every child)
// and a failed call would write errno.
long raw(long nr, long a = 0, long b = 0, long c = 0, long d = 0) { return spawn::sys::call(nr, a, b, c, d); }

void flush_signal_handlers() {
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    KernelSigaction old{};
    if (raw(SYS_rt_sigaction, sig, 0, reinterpret_cast<long>(&old), 8) != 0) continue;
    KernelSigaction now{};
    now.handler = old.handler == reinterpret_cast<unsigned long>(SIG_IGN) ? old.handler : 0;
    if (old.handler != now.handler || old.flags || old.mask || old.restorer)
      raw(SYS_rt_sigaction, sig, reinterpret_cast<long>(&now), 0, 8);
  }
}

void disable_alternate_signal_stack() {
  stack_t ss{};
  ss.ss_flags = SS_DISABLE;
  raw(SYS_sigaltstack, reinterpret_cast<long>(&ss), 0);
}

struct LinuxDirent64 {
  std::uint64_t d_ino;
  std::int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[1];
};

// fs/file.c do_close_on_exec(), for one fd: the user-space exec's own files stay
// (the stub maps, then closes them).
void close_if_cloexec(const Region& r, int fd) {
  for (std::size_t i = 0; i < r.keep_count; ++i)
    if (r.keep_fds[i] == fd) return;
  const long flags = raw(SYS_fcntl, fd, F_GETFD);
  if (flags >= 0 && (flags & FD_CLOEXEC)) raw(SYS_close, fd);
}

// Only 0-2 and the kept fds can be open (spawn closed the others).
void close_on_exec(const Region& r, const spawn::ExecResetsDone& done) {
  for (int fd = 0; fd < 3; ++fd) close_if_cloexec(r, fd);
  for (int i = 0; i < done.n_kept_fds; ++i)
    if (done.kept_fds[i] >= 3) close_if_cloexec(r, static_cast<int>(done.kept_fds[i]));
}

// Any fd may be open: list them. Each entry of /proc/self/fd costs the
// kernel a dentry and an inode, made here and dropped when the task is
// reaped, which is why a spawn child's knowledge is used when there is one.
void close_on_exec(const Region& r) {
  const int dir = static_cast<int>(
      raw(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/proc/self/fd"), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir < 0) return;
  for (;;) {
    const long n = raw(SYS_getdents64, dir, reinterpret_cast<long>(r.dents), static_cast<long>(r.dents_size));
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      const auto* d = reinterpret_cast<const LinuxDirent64*>(r.dents + off);
      off += d->d_reclen;
      int fd = 0;
      bool digits = d->d_name[0] != 0;
      for (const char* c = d->d_name; *c; ++c) {
        if (*c < '0' || *c > '9') digits = false;
        else fd = fd * 10 + (*c - '0');
      }
      if (digits && fd != dir) close_if_cloexec(r, fd);
    }
  }
  raw(SYS_close, dir);
}

// As the stub's own death path: unblock, SIGSEGV, and exit if it was ignored.
[[noreturn]] void die_with_sigsegv(const Region& r) {
  raw(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(r.zero_word), 0, 8);
  raw(SYS_kill, raw(SYS_getpid), SIGSEGV);
  for (;;) raw(SYS_exit_group, 128 + SIGSEGV);
}

void unregister_rseq() {
  // glibc registers a 32-byte area at the thread pointer + __rseq_offset with
  // the signature RSEQ_SIG; the new image's C library registers its own.
  if (__rseq_size == 0) return;
  auto* area = static_cast<char*>(__builtin_thread_pointer()) + __rseq_offset;
  for (unsigned len : {32u, __rseq_size})
    if (raw(SYS_rseq, reinterpret_cast<long>(area), len, 1 /* RSEQ_FLAG_UNREGISTER */, 0x53053053) == 0) break;
}

[[noreturn]] void enter_image(const detail::PreparedImpl& im, const spawn::ExecResetsDone& done) {
  const Region& r = im.region;
  std::uint64_t all = ~0ull, old = 0;
  raw(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&all), reinterpret_cast<long>(&old), 8);
  // The stub reinstalls `old` at the end. The usual empty mask is the
  // region's zero word; any other is written into the region, which after a
  // fork() costs a copy of the page.
  const std::uint64_t* restore = r.zero_word;
  if (old != 0) {
    *r.saved_mask = old;
    restore = r.saved_mask;
  }
  if (!done.signal_handlers_flushed) flush_signal_handlers();
  // prepare() leaves the stub's page rw- (it checked that this process may
  // make it executable); it turns r-x in the process that runs it. After the
  // flush, so that a refusal kills with the default action, as the stub does.
  if (raw(SYS_mprotect, reinterpret_cast<long>(r.code), 4096, PROT_READ | PROT_EXEC) != 0) die_with_sigsegv(r);
  disable_alternate_signal_stack();
  if (done.other_fds_closed) close_on_exec(r, done);
  else close_on_exec(r);
  unregister_rseq();
  run_stub(r.code, r.ops, r.zero_word, r.xsave, restore);
}

// The spawn child's way in. Its argument is the PreparedImpl, which stays
// where it is when the Prepared that owns it is moved.
void enter_replacement(const void* image, const spawn::ExecResetsDone& done) {
  enter_image(*static_cast<const detail::PreparedImpl*>(image), done);
}

}  // namespace

void Prepared::attach_to(spawn::Options& o) const {
  o.exec_replacement = enter_replacement;
  o.exec_replacement_arg = impl_.get();
  for (const UniqueFd& fd : impl_->fds) o.keep_fds.push_back(fd.get());
}

void Prepared::enter(const spawn::ExecResetsDone& done) const { enter_image(*impl_, done); }

Prepared::Prepared() : impl_(std::make_unique<detail::PreparedImpl>()) {}
Prepared::Prepared(Prepared&&) noexcept = default;
Prepared& Prepared::operator=(Prepared&&) noexcept = default;
Prepared::~Prepared() = default;  // the PreparedImpl gives back the region and closes the files
const exec::Prediction& Prepared::prediction() const { return impl_->pred; }
const std::vector<Step>& Prepared::steps() const { return impl_->steps; }
const std::vector<std::string>& Prepared::differences() const { return impl_->differences; }
std::vector<int> Prepared::descriptors() const {
  std::vector<int> out;
  for (const UniqueFd& fd : impl_->fds) out.push_back(fd.get());
  return out;
}

}  // namespace procforge::user_exec
