// Placing the child in a cgroup, with limits, on unified or hybrid hierarchies.
//
// The child is born in its cgroup2 directory with clone3(CLONE_INTO_CGROUP)
// and an O_PATH|O_DIRECTORY fd (kernel/cgroup/cgroup.c cgroup_css_set_fork(),
// 5.7), which avoids migrating a running task (cgroup_threadgroup_rwsem taken
// for writing). When clone3 is not available the child writes "0" to
// cgroup.procs itself before execve (child.cpp).
//
// A limit goes to the cgroup2 file when its controller is available in that
// directory (listed in its cgroup.controllers); otherwise to the cgroup v1
// hierarchy of that controller (memory.limit_in_bytes, pids.max,
// cpu.cfs_quota_us: Documentation/admin-guide/cgroup-v1/), and the child
// joins that v1 cgroup too.
//
// Paths: an absolute path names a directory inside a mounted hierarchy; a
// relative one is taken below the caller's own cgroup in every hierarchy
// (/proc/self/cgroup), so the child stays inside whatever contains the
// caller. Missing directories are created and reported, so that the caller
// can remove them; nothing outside them is written.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/files.hpp"
#include "spawn/plan.hpp"

namespace procforge::spawn {

namespace {

struct Hierarchy {
  std::string point;  // mount point
  std::string root;   // the hierarchy path mounted there
  bool v2 = false;
  std::vector<std::string> controllers;  // v1
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, sep);) out.push_back(part);
  return out;
}

// /proc/self/mountinfo: "id parent maj:min root point opts [tags] - fstype source superopts"
std::vector<Hierarchy> mounted_hierarchies() {
  std::vector<Hierarchy> out;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    auto f = split(line, ' ');
    std::size_t dash = 0;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (f.size() < 5 || dash + 3 >= f.size()) continue;
    const std::string& type = f[dash + 1];
    if (type != "cgroup" && type != "cgroup2") continue;
    Hierarchy h{f[4], f[3], type == "cgroup2", {}};
    if (!h.v2)
      for (const auto& o : split(f[dash + 3], ','))
        if (o != "rw" && o != "ro" && o.find('=') == std::string::npos) h.controllers.push_back(o);
    out.push_back(std::move(h));
  }
  return out;
}

// The caller's cgroup in the hierarchy (v2: "0::/path"; v1: "n:ctl,ctl:/path").
std::string own_cgroup(const Hierarchy& h) {
  std::ifstream in("/proc/self/cgroup");
  for (std::string line; std::getline(in, line);) {
    auto c1 = line.find(':'), c2 = line.find(':', c1 + 1);
    if (c1 == std::string::npos || c2 == std::string::npos) continue;
    std::string ctls = line.substr(c1 + 1, c2 - c1 - 1), path = line.substr(c2 + 1);
    if (h.v2 && line.compare(0, 3, "0::") == 0) return path;
    if (!h.v2)
      for (const auto& c : split(ctls, ','))
        if (!h.controllers.empty() && c == h.controllers.front()) return path;
  }
  return "/";
}

std::string join(std::string a, const std::string& b) {
  if (b.empty()) return a;
  while (!a.empty() && a.back() == '/') a.pop_back();
  return b.front() == '/' ? a + b : a + "/" + b;
}

// Hierarchy path -> directory under the mount point.
std::string dir_for(const Hierarchy& h, const std::string& hier_path) {
  std::string rel = hier_path;
  if (h.root != "/" && rel.compare(0, h.root.size(), h.root) == 0) rel = rel.substr(h.root.size());
  return join(h.point, rel);
}

bool inside(const std::string& path, const std::string& dir) {
  return path == dir || (path.compare(0, dir.size(), dir) == 0 && path.size() > dir.size() && path[dir.size()] == '/');
}

Status make_dirs(const std::string& mount_point, const std::string& dir, std::vector<std::string>& created) {
  std::string cur = mount_point;
  for (const auto& part : split(dir.substr(mount_point.size()), '/')) {
    if (part.empty()) continue;
    if (part == "..") return options_error(EINVAL, "cgroup path " + dir + " leaves its hierarchy");
    cur = join(cur, part);
    if (mkdir(cur.c_str(), 0755) == 0) created.push_back(cur);
    else if (errno != EEXIST) return Error::call(ErrorStep::cgroup, errno, "creating cgroup", cur);
  }
  return ok_status();
}

Status write_file(const std::string& path, const std::string& value) {
  if (int err = write_whole(path, value)) return Error::call(ErrorStep::cgroup, err, "writing " + value + " to", path);
  return ok_status();
}

bool v2_has(const std::string& dir, const std::string& controller) {
  std::ifstream in(dir + "/cgroup.controllers");
  for (std::string c; in >> c;)
    if (c == controller) return true;
  return false;
}

struct Limit {
  const char* controller;
  std::string v2_file, v2_value;
  std::vector<std::pair<std::string, std::string>> v1_files;  // in order
};

std::vector<Limit> limits_of(const CgroupLimits& l) {
  std::vector<Limit> out;
  if (l.memory_max)
    out.push_back({"memory",
                   "memory.max",
                   std::to_string(*l.memory_max),
                   {{"memory.limit_in_bytes", std::to_string(*l.memory_max)}}});
  if (l.pids_max)
    out.push_back({"pids", "pids.max", std::to_string(*l.pids_max), {{"pids.max", std::to_string(*l.pids_max)}}});
  if (l.cpu_max_us)
    out.push_back({"cpu",
                   "cpu.max",
                   std::to_string(*l.cpu_max_us) + " 100000",
                   {{"cpu.cfs_period_us", "100000"}, {"cpu.cfs_quota_us", std::to_string(*l.cpu_max_us)}}});
  return out;
}

}  // namespace

Status prepare_cgroup(Plan& plan) {
  const Options& o = plan.opts;
  if (!o.cgroup) {
    if (o.cgroup_limits.memory_max || o.cgroup_limits.pids_max || o.cgroup_limits.cpu_max_us)
      return options_error(EINVAL, "cgroup limits need a cgroup path");
    return ok_status();
  }
  const std::string& want = *o.cgroup;
  if (want.empty()) return options_error(EINVAL, "empty cgroup path");
  CgroupPlan& cg = plan.cgroup;
  auto hierarchies = mounted_hierarchies();

  // Where the path lives: the hierarchy path it names, and which mount.
  const Hierarchy* named = nullptr;
  std::string hier_path;  // empty for a relative path
  if (want.front() == '/') {
    for (const auto& h : hierarchies)
      if (inside(want, h.point) && (!named || h.point.size() > named->point.size())) named = &h;
    if (!named)
      return Error{ErrorStep::cgroup, ENOENT, want, "cgroup " + want + " is not inside a mounted cgroup hierarchy"};
    hier_path = join(named->root, want.substr(named->point.size()));
  }
  auto dir_in = [&](const Hierarchy& h) {
    return hier_path.empty() ? dir_for(h, join(own_cgroup(h), want)) : dir_for(h, hier_path);
  };

  // A v1 path names no cgroup2 directory; a relative one uses the cgroup2 mount.
  const Hierarchy* v2 = nullptr;
  if (named) {
    if (named->v2) v2 = named;
  } else {
    for (const auto& h : hierarchies)
      if (h.v2 && !v2) v2 = &h;
  }

  std::vector<std::pair<const Hierarchy*, std::string>> v1_used;
  auto use_v1 = [&](const Hierarchy& h) -> Status {
    for (const auto& u : v1_used)
      if (u.first == &h) return ok_status();
    std::string dir = dir_in(h);
    if (auto st = make_dirs(h.point, dir, cg.created); !st) return st;
    v1_used.emplace_back(&h, dir);
    return ok_status();
  };
  if (named && !named->v2)
    if (auto st = use_v1(*named); !st) return st;

  if (v2) {
    cg.v2_dir = dir_in(*v2);
    if (auto st = make_dirs(v2->point, cg.v2_dir, cg.created); !st) return st;
  }
  for (const auto& lim : limits_of(o.cgroup_limits)) {
    if (!cg.v2_dir.empty() && v2_has(cg.v2_dir, lim.controller)) {
      if (auto st = write_file(join(cg.v2_dir, lim.v2_file), lim.v2_value); !st) return st;
      continue;
    }
    const Hierarchy* v1 = nullptr;
    for (const auto& h : hierarchies)
      for (const auto& c : h.controllers)
        if (c == lim.controller) v1 = &h;
    if (!v1)
      return Error{ErrorStep::cgroup, ENOTSUP, lim.controller,
                   std::string("no ") + lim.controller + " controller in cgroup2 (" +
                       (cg.v2_dir.empty() ? "not mounted" : cg.v2_dir) + ") nor in cgroup v1"};
    if (auto st = use_v1(*v1); !st) return st;
    std::string dir;
    for (const auto& u : v1_used)
      if (u.first == v1) dir = u.second;
    for (const auto& [file, value] : lim.v1_files)
      if (auto st = write_file(join(dir, file), value); !st) return st;
  }
  if (cg.v2_dir.empty() && v1_used.empty())
    return Error{ErrorStep::cgroup, ENOENT, want, "no cgroup2 hierarchy is mounted for " + want};

  Block& b = plan.block;
  if (!cg.v2_dir.empty()) {
    cg.v2_fd.reset(open(cg.v2_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!cg.v2_fd) return Error::call(ErrorStep::cgroup, errno, "opening cgroup", cg.v2_dir);
    b.v2_procs = plan.keep(join(cg.v2_dir, "cgroup.procs"));
  }
  for (const auto& u : v1_used) {
    cg.v1_dirs.push_back(u.second);
    plan.cgroup_procs.push_back(plan.keep(join(u.second, "cgroup.procs")));
  }
  b.cgroup_procs = plan.cgroup_procs.data();
  b.ncgroup_procs = static_cast<int>(plan.cgroup_procs.size());
  return ok_status();
}

void undo_cgroup(Plan& plan) {
  auto& created = plan.cgroup.created;
  for (auto it = created.rbegin(); it != created.rend(); ++it) rmdir(it->c_str());
  created.clear();
}

Status remove_cgroups(const std::vector<std::string>& dirs) {
  Status result = ok_status();
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it)
    if (rmdir(it->c_str()) != 0 && errno != ENOENT && result.ok())
      result = Error::call(ErrorStep::cgroup, errno, "removing cgroup", *it);
  return result;
}

}  // namespace procforge::spawn
