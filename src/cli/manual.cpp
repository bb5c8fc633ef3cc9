// Manual pages and shell completions, generated from the CLI's own option
// definitions (the CLI::App tree) so that they cannot drift from what the
// parser accepts. The prose a page adds to the options (what the subcommand
// is for, its exit statuses, examples) is kept here, next to the
// definitions; a test checks that every subcommand has it.
//   procforge manpage [SUBCOMMAND]     roff for procforge(1) or procforge-SUBCOMMAND(1)
//   procforge completion bash|zsh      a completion script for the shell
#include <cctype>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include "cli/cli.hpp"
#include "cli/command.hpp"
#include "cli/output.hpp"

namespace procforge::cli {

namespace {

struct Page {
  std::string synopsis;     // after "procforge NAME "
  std::string description;  // paragraphs separated by blank lines
  std::string exit_status;  // one "N\twhat" a line
  std::string examples;     // one "command\twhat it shows" a line
};

// The one table of exit statuses; procforge(1) shows all of them.
const std::map<std::string, Page>& pages() {
  static const std::map<std::string, Page> p{
      {"explain",
       {"[OPTIONS] [--] PROGRAM [ARG...]",
        "Says what execve(2) and the dynamic linker would do with PROGRAM, and why the start would fail, without "
        "running anything: the #! chain and binfmt_misc entries the kernel would follow, the kernel's checks in "
        "its order with the errno each would give, the memory layout, initial stack and auxiliary vector of the "
        "new image, and ld.so's search for every library with the rule that found it.\n\n"
        "The text fits a screen by default: the verdict with why and fix, the chain, the final argv and the "
        "libraries as a tree, each with the rule that found it (a missing one with the number of places tried). "
        "-v adds the kernel's checks in order, the ELF headers, the exec plan (every mapping, the entry point, "
        "brk), ld.so's relocation work and the places tried for a missing library; -vv adds the initial stack "
        "and the auxiliary vector. --json always carries everything.\n\n"
        "A PROGRAM without '/' is searched in PATH as execvp(3) does (--no-path-search asks the literal execve "
        "question). --batch FILE explains every path listed in FILE, one line each. --execveat DIRFD and "
        "--fexecve FD ask about execveat(2) and fexecve(3) with a descriptor procforge inherits.\n\n"
        "When the program is glibc's ld.so itself, ld.so's own options (--list, --library-path, --preload, "
        "--inhibit-cache, --inhibit-rpath, --argv0, --glibc-hwcaps-prepend, --glibc-hwcaps-mask, ...) are read "
        "as ld.so reads them and applied to the FILE it loads.\n\n"
        "--bindings adds every symbol lookup of ld.so's start-up, in its order: for each relocation and PLT slot "
        "of every object, the object and version it binds to (as LD_DEBUG=bindings prints them: global scope "
        "with LD_PRELOAD first, DT_SYMBOLIC, protected, weak and unique symbols, versions, copy relocations, "
        "IFUNC resolvers, TLS), or the undefined-symbol error ld.so would stop with, which the verdict names: at "
        "start-up (a data reference, or a PLT slot under LD_BIND_NOW or -z now) or at the first call through a "
        "lazy PLT slot.",
        "0\tthe program would start\n1\texecve or ld.so would fail, or the new process would be killed\n2\tbad "
        "usage, or the question cannot be answered",
        "procforge explain /usr/bin/ls\tthe verdict, the exec chain and the libraries\n"
        "procforge explain -vv /usr/bin/ls\tthe whole report, down to the initial stack and auxv\n"
        "procforge explain --json ./script.sh\tthe same as JSON\n"
        "procforge explain --bindings /usr/bin/ls\twhere every symbol reference binds\n"
        "find /usr/bin -type f | procforge explain --batch -\tone verdict a file\n"
        "procforge explain /lib64/ld-linux-x86-64.so.2 --list --library-path lib ./prog\twhat ld.so's own "
        "options make it load\n"
        "procforge explain --execveat 3 --cloexec script.sh 3<.\texecveat(2) of a script through a "
        "close-on-exec descriptor"}},
      {"ldd",
       {"[-v] [-u] [-r] [-d] [--tree] [--json] [--env K=V]... [--] FILE...",
        "Answers what ldd(1) answers for executables and shared libraries alike, without loading or running them "
        "(ldd runs the file's loader, and an audit module named in the file runs its code): the same lines as "
        "glibc's ldd without the load addresses (\"NAME => PATH\", \"NAME => not found\", \"statically "
        "linked\", \"not a dynamic executable\", the errors of ld.so's trace), the \"FILE:\" header when "
        "several files are given, and ldd's exit status.\n\n"
        "It models what ldd does: ld.so run explicitly on the file (LD_TRACE_LOADED_OBJECTS=1 "
        "/lib64/ld-linux-x86-64.so.2 FILE), so $ORIGIN comes from the path as given and a name without '/' is "
        "taken as ./NAME. The environment (LD_LIBRARY_PATH, LD_PRELOAD) is this process's, edited by --env, "
        "--unset and --clear-env. -v adds ldd -v's version information section; -u lists the direct dependencies "
        "no symbol of the file binds to, as ldd -u (with ld.so's symbol lookup: versions, visibility, copy "
        "relocations), and then the status is 1 when there is one. --tree draws each file's "
        "dependency tree with the rule that found each object; --json gives per file the same \"loader\" object "
        "as explain --json, the lines ldd would print and its status. -r and -d relocate every object as ld.so "
        "does for ldd (LD_WARN, and LD_BIND_NOW for -r) and add the same \"undefined symbol: NAME\t(OBJECT)\" "
        "and copy-relocation size lines after the list (-d: data relocations only). A 32-bit file that ldd would hand "
        "to /lib/ld-linux.so.2 is refused "
        "(status 2).",
        "0\tevery FILE was listed\n1\tone FILE could not be (missing, not a regular file, not dynamic, or the "
        "trace stops), or -u found an unused dependency, as ldd\n2\tbad usage, or a FILE procforge cannot answer for",
        "procforge ldd /usr/bin/ls\tldd's lines without addresses\n"
        "procforge ldd -v /usr/lib/x86_64-linux-gnu/libz.so.1\tof a library, with the version section\n"
        "procforge ldd --tree /usr/bin/ls\tthe tree with the rule that found each object\n"
        "procforge ldd -r /usr/lib/x86_64-linux-gnu/libfl.so\tthe symbols nothing defines"}},
      {"run",
       {"[OPTIONS] [--] PROGRAM [ARG...]",
        "Creates a process running PROGRAM with explicit control over what it inherits (fds, environment, "
        "credentials, rlimits, namespaces, cgroup, signal state) and waits for it, as a supervisor: signals sent "
        "to procforge are passed on, --timeout ends the whole process group as timeout(1) does.\n\n"
        "--exec=user replaces the kernel's execve with procforge's user-space exec (--loader=user is the older "
        "spelling). --warm starts the program as an instance of a template held at main (docs/warm-starts.md); "
        "--report then says whether it was warm, or why it started cold, and what differs from a cold start.",
        "N\tthe program's exit status\n128+N\tthe program was killed by signal N\n124\t--timeout expired\n"
        "125\ta control could not be applied\n126\tPROGRAM was found but could not be executed\n127\tPROGRAM "
        "was not found\n2\tbad usage (or, with --exec=user, a PATH search that could not be answered)",
        "procforge run --timeout 10s -- make\ta build that cannot hang\n"
        "procforge run --clear-env --env PATH=/usr/bin --uid nobody -- id\ta clean environment and identity"}},
      {"exec",
       {"[OPTIONS] [--] PROGRAM [ARG...]",
        "Replaces procforge with PROGRAM by a user-space exec: the ELF file and its interpreter are mapped, the "
        "stack and auxiliary vector built and the entry point entered without execve(2). --steps shows each "
        "step.",
        "N\tPROGRAM's own status, once it runs\n126\tthe exec failed before the point of no return\n127\tPROGRAM "
        "was not found\n2\tbad usage, or -C DIR or the PATH search failed",
        "procforge exec --steps -- /usr/bin/true\tthe steps of a user-space exec"}},
      {"profile",
       {"[OPTIONS] [--] PROGRAM [ARG...]",
        "Runs PROGRAM under ptrace and says where its start-up time goes, phase by phase: fork, execve, ld.so's "
        "loading and relocation of each library, constructors, libc initialisation and main.",
        "0\tthe profile was taken\n1\tthe program could not be started or profiled\n2\tbad usage, or the "
        "--html file could not be written",
        "procforge profile -n 20 -- /usr/bin/cmake --version\tmedian phases over 20 runs\n"
        "procforge profile --html report.html -- python3 -c pass\tthe same as an HTML page"}},
      {"batch",
       {"[-j N] [--warm] [--warm-max-uses N] [--warm-max-age S] [--keep-order] [--halt-on-error] [--joblog FILE] "
        "[--bar] [--json] [FILE|-]",
        "Runs the commands of FILE (or of standard input), one a line, at most N at once (by default as many as "
        "there are CPUs), as xargs -P and GNU parallel do, but without a shell. Each command's stdout and stderr are "
        "kept apart from every other command's and written whole when it ends (with --keep-order, in input "
        "order), so that outputs never interleave. Commands get /dev/null as stdin.\n\n"
        "A line is split into words as sh(1) splits a simple command: blanks separate words; single quotes keep "
        "everything up to the next one; double quotes keep everything but a backslash before $ ` \" \\ or a "
        "newline; a backslash outside quotes keeps the next character, and before a newline continues the command "
        "on the next line; a # that starts a word starts a comment. Blank and comment lines are skipped. Nothing "
        "is expanded: a line holding what a shell would expand or treat as an operator ($NAME, $(...), `...`, | & "
        "; < > ( )) unquoted is refused, as is a quote left open at the end of a line; put such characters in "
        "single quotes to pass them as written, or run the line as sh -c '...'. Globs and ~ stay as written. The "
        "whole input is read and checked before any command runs.\n\n"
        "A command fails when its status is not 0: its exit status, 128+N when signal N killed it, 127 when the "
        "program was not found and 126 when it could not be executed (with a 'procforge batch:' line on that "
        "command's stderr). --halt-on-error is GNU parallel's --halt soon,fail=1: after the first failure no "
        "command is started, the running ones finish, and the exit status is that command's.\n\n"
        "--joblog FILE writes GNU parallel's joblog (Seq, Host, Starttime, JobRuntime, Send, Receive, Exitval, "
        "Signal, Command; Receive counts the bytes of stdout), a line for each command as its output is written. "
        "--json writes one object a command on stdout, in input order, instead of the outputs: index (from 1, the "
        "joblog's Seq), line, argv, status, signal (null unless one ended it), warm, fallback_reason (null unless "
        "--warm was given and the start went cold), wall_us, stdout and stderr.\n\n"
        "--warm starts each program from a template of it that already went through execve, ld.so and libc's "
        "initialisation, kept for every later line that runs it, and starts it cold when the template cannot stand "
        "in for a cold start.",
        "0\tevery command succeeded\n1-100\tthat many commands failed\n101\tmore than 100 commands failed\nN\t"
        "with --halt-on-error: the status of the command that failed first\n255\tthe batch could not run: "
        "an unreadable FILE, a line refused, a bad -j\n2\tan option procforge does not know",
        "procforge batch -j 4 commands.txt\tfour at a time, outputs as commands end\n"
        "procforge batch --keep-order --joblog log.tsv - < commands.txt\toutputs in input order, a joblog\n"
        "procforge batch --json --warm commands.txt\tone JSON object a command, warm starts"}},
      {"serve",
       {"[--socket PATH] [--backend io_uring|epoll|auto] [--max-children N] [--allow-uid USER]... "
        "[--warm-max-uses N] [--warm-max-age S] [--grace S]",
        "Runs the spawn server in the foreground: it listens on a Unix SOCK_SEQPACKET socket (created 0600; by "
        "default $XDG_RUNTIME_DIR/procforge.sock, or /run/procforge/procforge.sock for root, or the socket systemd "
        "passes), creates processes for the clients that connect, sends each one's pid with a pidfd and then its "
        "exit, and keeps warm templates alive between clients. Clients: procforge run --server and the library "
        "(procforge/client.hpp). Admitted: the server's uid, root and --allow-uid users, whose processes run with "
        "their own uid and groups. The event loop runs on io_uring, or on epoll where io_uring_setup is refused. "
        "SIGTERM or SIGINT drain it: no new requests, the socket removed, running processes get SIGTERM and then "
        "SIGKILL after --grace seconds.",
        "0\tthe server drained and stopped\n1\tit could not serve: the socket (another server already listens "
        "there) or the backend\n2\tbad usage",
        "procforge serve --socket /tmp/pf.sock\ta server for this user\n"
        "procforge run --server /tmp/pf.sock --warm -- cmake --version\ta warm start through it"}},
      {"bench",
       {"[SUITE...] [--quick] [--json] [--html FILE] [--runs N] | spawn [OPTIONS] | warm [OPTIONS]",
        "Measures the cost of process creation on this machine, side by side with the baselines, and reports "
        "ratios. With suite names or none: the cost model as curves, each point a median with min and max of "
        "interleaved runs. create: spawn+wait by fork+exec, vfork+exec, posix_spawn, clone3 and a warm "
        "instance, and fork or vfork alone, as the parent's touched memory (to 8 GiB), reserved address space "
        "(to 64 GiB) and huge pages vary. link: exec+ld.so of programs generated and built with cc in a "
        "temporary directory: libraries, lazy against BIND_NOW, symbols, SysV against GNU hash, DT_RELR "
        "against RELA, static and static-pie, LD_LIBRARY_PATH length. faults: the same starts with a cold and "
        "a warm page cache. claims: the pipeline's cost claims with their figures and a verdict. --html "
        "writes a page with an SVG chart per curve. spawn: spawn+wait latency of procforge's strategy against "
        "fork+exec, vfork, posix_spawn and "
        "clone3, by parent size. warm: a cold start (spawn+exec+wait) against a warm instance (a fork of a "
        "template held at main, then wait), interleaved, for /bin/true, ls /, python3 -c pass, cmake --version "
        "and a program it builds with 100 libraries (--program CMD measures CMD instead).",
        "0\tthe benchmark ran\n2\tbad usage, the static target was not found, or a measurement failed\n130\t"
        "interrupted (children reaped, generated files removed)",
        "procforge bench --quick --html bench.html\tevery suite in about a minute, with a page of charts\n"
        "procforge bench create claims --json\tthe creation curves and the claims\n"
        "procforge bench spawn\tspawn+wait latency by strategy\nprocforge bench warm --runs 51\tcold against warm "
        "starts"}},
      {"version",
       {"[--json]", "Prints the version built, its git commit, and the kernel and glibc procforge runs on.",
        "0\tthe version was printed\n2\tbad usage", "procforge version --json\tfor a bug report"}},
      {"demo",
       {"", "Explains /usr/bin/ls and a two-level #! chain made for the demo.",
        "0\tboth would start\n1\tone would not\n2\tbad usage, or the demo's files could not be made",
        "procforge demo\ta first look"}},
      {"completion",
       {"bash|zsh", "Prints a completion script for the shell, generated from the option definitions.",
        "0\tthe script was printed\n2\tbad usage",
        "source <(procforge completion bash)\tcompletion in the running bash"}},
      {"manpage",
       {"[SUBCOMMAND]",
        "Prints the manual page of procforge or of one subcommand as roff, generated from the option "
        "definitions (the installed pages are made this way).",
        "0\tthe page was printed\n2\tbad usage", "procforge manpage run | man -l -\tread a page"}},
  };
  return p;
}

// roff text: a backslash is \e, a hyphen in an option name \-, and a line
// must not start with a control character.
std::string roff(const std::string& s) {
  std::string out;
  bool line_start = true;
  for (char c : s) {
    if (line_start && (c == '.' || c == '\'')) out += "\\&";
    if (c == '\\') out += "\\e";
    else if (c == '-') out += "\\-";
    else out += c;
    line_start = c == '\n';
  }
  return out;
}

std::string option_words(const CLI::Option* o) {
  std::string s;
  for (const auto& n : o->get_snames()) s += (s.empty() ? "-" : ", -") + n;
  for (const auto& n : o->get_lnames()) s += (s.empty() ? "--" : ", --") + n;
  if (o->get_items_expected_min() > 0) s += " " + (o->get_type_name().empty() ? "VALUE" : o->get_type_name());
  return s;
}

std::vector<const CLI::Option*> named_options(const CLI::App& app) {
  return app.get_options([](const CLI::Option* o) { return o->nonpositional() && !o->get_group().empty(); });
}

void table(std::ostream& o, const std::string& rows) {
  std::istringstream in(rows);
  for (std::string line; std::getline(in, line);) {
    auto tab = line.find('\t');
    o << ".TP\n"
      << roff(line.substr(0, tab)) << "\n"
      << roff(tab == std::string::npos ? "" : line.substr(tab + 1)) << "\n";
  }
}

void paragraphs(std::ostream& o, const std::string& text) {
  std::size_t at = 0;
  while (at <= text.size()) {
    auto end = text.find("\n\n", at);
    o << ".PP\n" << roff(text.substr(at, end - at)) << "\n";
    if (end == std::string::npos) break;
    at = end + 2;
  }
}

const char* kDate = "2026";

void subcommand_page(std::ostream& o, const CLI::App& sub, const Page& page) {
  const std::string name = sub.get_name();
  std::string upper = name;
  for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  o << ".TH PROCFORGE\\-" << roff(upper) << " 1 " << kDate << " \"procforge " << PROCFORGE_VERSION
    << "\" \"procforge manual\"\n.SH NAME\nprocforge\\-" << roff(name) << " \\- " << roff(sub.get_description())
    << "\n.SH SYNOPSIS\n.B procforge " << roff(name) << "\n"
    << roff(page.synopsis) << "\n.SH DESCRIPTION\n";
  paragraphs(o, page.description);
  o << ".SH OPTIONS\n";
  for (const CLI::Option* opt : named_options(sub))
    o << ".TP\n.B " << roff(option_words(opt)) << "\n" << roff(opt->get_description()) << "\n";
  if (!sub.get_footer().empty()) paragraphs(o, sub.get_footer());
  o << ".SH EXIT STATUS\n";
  table(o, page.exit_status);
  o << ".SH EXAMPLES\n";
  table(o, page.examples);
  o << ".SH SEE ALSO\n.BR procforge (1)\n";
}

void main_page(std::ostream& o, const CLI::App& app) {
  o << ".TH PROCFORGE 1 " << kDate << " \"procforge " << PROCFORGE_VERSION
    << "\" \"procforge manual\"\n.SH NAME\nprocforge \\- " << roff(app.get_description())
    << "\n.SH SYNOPSIS\n.B procforge\nSUBCOMMAND [OPTIONS] [\\-\\-] [PROGRAM [ARG...]]\n.br\n.B procforge "
       "\\-\\-version\n.SH DESCRIPTION\n.PP\nprocforge models and runs the Linux process-creation pipeline "
       "stage by stage: fork and clone, execve with its #! and binfmt_misc dispatch, the ELF loader, and glibc's "
       "dynamic linker. Each subcommand has its own page.\n.PP\nEvery subcommand takes \\-\\-color=auto|always|never "
       "and writes its errors on standard error as \"procforge SUBCOMMAND: message\". Every \\-\\-json document "
       "carries \"procforge_version\" and \"schema\", the name of its shape (procforge.NAME/VERSION), which "
       "docs/schema/NAME.schema.json in the source describes as a JSON Schema.\n.SH SUBCOMMANDS\n";
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    o << ".TP\n.BR procforge\\-" << roff(sub->get_name()) << " (1)\n" << roff(sub->get_description()) << "\n";
  o << ".SH EXIT STATUS\nEvery subcommand's statuses, in one table:\n";
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    auto p = pages().find(sub->get_name());
    if (p == pages().end()) continue;
    o << ".SS " << roff(sub->get_name()) << "\n";
    table(o, p->second.exit_status);
  }
  o << ".SH ENVIRONMENT\n.TP\nNO_COLOR\nWhen set and not empty, no colours unless \\-\\-color=always asks for "
       "them.\n.TP\nPROCFORGE_AUDIT_MODULE\nThe "
       "LD_AUDIT module profile loads (by default found next to the procforge binary or in "
       "../lib/procforge/).\n.SH SEE ALSO\n.BR execve (2),\n.BR ld.so (8),\n.BR ldd (1)\n";
}

// Words bash offers after "procforge SUB": its options, and for the PROGRAM a command or a file.
void bash_completion(std::ostream& o, const CLI::App& app) {
  o << "# bash completion for procforge, generated by `procforge completion bash`\n_procforge() {\n"
       "  local cur=${COMP_WORDS[COMP_CWORD]} sub=${COMP_WORDS[1]}\n"
       "  if [ \"$COMP_CWORD\" -eq 1 ]; then\n    COMPREPLY=($(compgen -W \"";
  std::string subs;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    subs += (subs.empty() ? "" : " ") + sub->get_name();
  o << subs << " --version --help\" -- \"$cur\"))\n    return\n  fi\n  local opts\n  case $sub in\n";
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    std::string words;
    for (const CLI::Option* opt : named_options(*sub)) {
      for (const auto& n : opt->get_snames()) words += " -" + n;
      for (const auto& n : opt->get_lnames()) words += " --" + n;
    }
    o << "    " << sub->get_name() << ") opts=\"" << words.substr(words.empty() ? 0 : 1) << "\" ;;\n";
  }
  o << "    *) return ;;\n  esac\n"
       "  if [[ $cur == -* ]]; then\n    COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
       "  else\n    COMPREPLY=($(compgen -c -- \"$cur\") $(compgen -f -- \"$cur\"))\n  fi\n}\n"
       "complete -F _procforge procforge\n";
}

std::string zsh_quote(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else if (c == '[' || c == ']' || c == ':') out += std::string("\\") + c;
    else out += c;
  }
  return out;
}

void zsh_completion(std::ostream& o, const CLI::App& app) {
  o << "#compdef procforge\n# zsh completion for procforge, generated by `procforge completion zsh`\n"
       "_procforge() {\n  local -a subcommands\n  subcommands=(\n";
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    o << "    '" << sub->get_name() << ":" << zsh_quote(sub->get_description()) << "'\n";
  o << "  )\n  if (( CURRENT == 2 )); then\n    _describe subcommand subcommands\n    return\n  fi\n"
       "  local sub=${words[2]}\n  shift words; (( CURRENT-- ))\n  case $sub in\n";
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    o << "    " << sub->get_name() << ")\n      _arguments -S";
    for (const CLI::Option* opt : named_options(*sub)) {
      const bool value = opt->get_items_expected_min() > 0;
      for (const auto& n : opt->get_lnames())
        o << " \\\n        '--" << n << (value ? "=" : "") << "[" << zsh_quote(opt->get_description()) << "]"
          << (value ? ":value:_default" : "") << "'";
      for (const auto& n : opt->get_snames())
        o << " \\\n        '-" << n << "[" << zsh_quote(opt->get_description()) << "]"
          << (value ? ":value:_default" : "") << "'";
    }
    o << " \\\n        '*::command:_normal'\n      ;;\n";
  }
  o << "  esac\n}\n_procforge \"$@\"\n";
}

}  // namespace

bool has_manual_page(const std::string& subcommand) { return pages().count(subcommand) != 0; }

void add_manual(CLI::App& app, std::vector<Command>& commands) {
  // The argument comes after the options, where the other subcommands take PROGRAM.
  auto* m = app.add_subcommand("manpage", "Print a manual page (roff) generated from the option definitions");
  m->footer("procforge manpage [SUBCOMMAND]: procforge(1), or procforge-SUBCOMMAND(1).");
  commands.push_back({m, [&app](std::vector<std::string> rest) {
                        if (rest.empty()) {
                          main_page(std::cout, app);
                          return 0;
                        }
                        const CLI::App* sub = nullptr;
                        for (const CLI::App* s : app.get_subcommands([](const CLI::App*) { return true; }))
                          if (s->get_name() == rest[0]) sub = s;
                        auto p = pages().find(rest[0]);
                        if (rest.size() > 1 || !sub || p == pages().end()) {
                          print_error("manpage", "takes one subcommand name, got '" + rest.back() + "'");
                          return kExitCannot;
                        }
                        subcommand_page(std::cout, *sub, p->second);
                        return 0;
                      }});

  auto* c = app.add_subcommand("completion", "Print a bash or zsh completion script");
  c->footer("procforge completion bash|zsh");
  commands.push_back({c, [&app](std::vector<std::string> rest) {
                        if (rest.size() != 1 || (rest[0] != "bash" && rest[0] != "zsh")) {
                          print_error("completion", "takes bash or zsh");
                          return kExitCannot;
                        }
                        if (rest[0] == "bash") bash_completion(std::cout, app);
                        else zsh_completion(std::cout, app);
                        return 0;
                      }});
}

}  // namespace procforge::cli
