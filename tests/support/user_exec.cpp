#include "user_exec.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <set>

#include "procforge/loader.hpp"
#include "run_command.hpp"

namespace procforge::testsupport {
namespace {

// The child's last step: the point of no return. enter() never returns.
int enter_prepared(const void* ctx) { static_cast<const loader::Prepared*>(ctx)->enter(); }

exec::Request model_request(const OracleRequest& req) {
  exec::Request r;
  r.path = req.path;
  r.argv = req.argv_null ? std::vector<std::string>{} : req.argv;
  r.argv_null = req.argv_null;
  r.envp = req.envp;
  r.cwd = req.cwd;
  if (req.keep_credentials) {
    r.creds = exec::Credentials::current();
  } else {
    r.creds = exec::Credentials::unprivileged(req.uid, req.gid);
    r.creds.groups = req.groups;
  }
  r.rlimit_stack = req.rlimit_stack == RLIM_INFINITY ? ~0ull : static_cast<std::uint64_t>(req.rlimit_stack);
  r.addr_no_randomize = req.addr_no_randomize;
  return r;
}

}  // namespace

OracleResult run_user_exec(const OracleRequest& req, UserExecDetail* detail) {
  loader::Options opts;
  opts.request = model_request(req);
  opts.randomize = !req.addr_no_randomize;
  opts.for_child = true;
  // The identity is taken by the stub at the end, after the exe link is set
  // (which the dropped identity could not do), so the child keeps root's.
  if (!req.keep_credentials) {
    opts.become_uid = req.uid;
    opts.become_gid = req.gid;
    opts.become_groups = req.groups;
  }
  auto prepared = loader::prepare(opts);
  if (detail) {
    detail->prepared = prepared.ok();
    if (prepared.ok()) {
      detail->prediction = prepared->prediction();
      detail->differences = prepared->differences();
      detail->mapped_files.clear();
      if (const auto& plan = detail->prediction.plan) {
        std::set<std::string> seen;
        for (const auto& m : plan->mappings) {
          if (!m.file_backed) continue;
          std::string p = m.object[0] == '/' || req.cwd.empty() ? m.object : req.cwd + "/" + m.object;
          if (seen.insert(p).second) detail->mapped_files.push_back(p);
        }
      }
    } else {
      detail->prepare_error = prepared.error().message;
    }
  }
  if (!prepared.ok()) {
    OracleResult res;
    if (prepared.error().err == 0) {
      res.setup_error = "prepare: " + prepared.error().message;
    } else {
      res.outcome = OracleOutcome::error;
      res.err = prepared.error().err;
    }
    return res;
  }
  OracleRequest child = req;
  child.trace = false;            // no exec event to see
  child.keep_credentials = true;  // the stub takes req's identity (become_*)
  return run_child(child, enter_prepared, &*prepared);
}

std::vector<std::string> unreadable_by(const std::vector<std::string>& files, uid_t uid, gid_t gid,
                                       const std::vector<gid_t>& groups) {
  std::vector<std::string> out;
  if (files.empty()) return out;
  std::vector<const char*> paths;
  for (const auto& f : files) paths.push_back(f.c_str());
  // One byte a file, from a child that took uid, gid and groups: 'x' where open() gives EACCES.
  auto probe_reads = [&](int out_fd) {
    if (::setgroups(groups.size(), groups.data()) != 0 || ::setresgid(gid, gid, gid) != 0 ||
        ::setresuid(uid, uid, uid) != 0)
      return 1;
    for (const char* f : paths) {
      const int fd = ::open(f, O_RDONLY | O_CLOEXEC);
      const char c = fd >= 0 || errno != EACCES ? 'r' : 'x';
      if (fd >= 0) ::close(fd);
      (void)!::write(out_fd, &c, 1);
    }
    return 0;
  };
  const std::string verdicts = run_forked(probe_reads).out;
  for (std::size_t i = 0; i < verdicts.size() && i < files.size(); ++i)
    if (verdicts[i] == 'x') out.push_back(files[i]);
  return out;
}

}  // namespace procforge::testsupport
