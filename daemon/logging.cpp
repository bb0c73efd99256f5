#include "daemon/logging.h"

#include <fcntl.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

namespace raftd::daemon {
namespace {

// syslog priorities as sd-daemon(3) prefixes: journald strips "<N>" and keeps N.
int syslog_priority(spdlog::level::level_enum l) {
    switch (l) {
        case spdlog::level::trace:
        case spdlog::level::debug:
            return 7;
        case spdlog::level::info:
            return 6;
        case spdlog::level::warn:
            return 4;
        case spdlog::level::err:
            return 3;
        default:
            return 2;
    }
}

// Writes each formatted line with a single write(2) to stderr or to a file it owns.
class LineSink final : public spdlog::sinks::base_sink<std::mutex> {
  public:
    LineSink(int fd, bool owned, std::string path, bool journal)
        : fd_(fd), owned_(owned), path_(std::move(path)), journal_(journal) {}
    ~LineSink() override {
        if (owned_) ::close(fd_);
    }

    // Opens `path` for appending; the new fd replaces the old one only once it is open.
    Status reopen() {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!owned_) return Status::ok();
        auto fd = open_log_file(path_);
        if (!fd) return fd.status();
        ::close(fd_);
        fd_ = *fd;
        return Status::ok();
    }

    static Result<int> open_log_file(const std::string& path) {
        int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0)
            return Status::io_error("log_file " + path + ": cannot open: " + std::strerror(errno));
        return fd;
    }

  protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        spdlog::memory_buf_t line;
        if (journal_) {
            line.push_back('<');
            line.push_back(static_cast<char>('0' + syslog_priority(msg.level)));
            line.push_back('>');
        }
        formatter_->format(msg, line);
        const char* p = line.data();
        size_t left = line.size();
        while (left > 0) {
            ssize_t n = ::write(fd_, p, left);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;  // a full disk must not stop the daemon; the line is lost
            p += n;
            left -= static_cast<size_t>(n);
        }
    }
    void flush_() override {}

  private:
    int fd_;
    bool owned_;
    std::string path_;
    bool journal_;
};

std::shared_ptr<LineSink> g_sink;  // the installed sink, for reopen_logs()

}  // namespace

bool under_systemd() {
    auto set = [](const char* name) {
        const char* v = std::getenv(name);
        return v && *v;
    };
    return set("JOURNAL_STREAM") || set("INVOCATION_ID");
}

LogStyle resolve_log_style(std::string_view format, bool to_file, bool systemd) {
    if (format == "text") return LogStyle::kText;
    if (format == "plain") return LogStyle::kPlain;
    if (format == "journal") return LogStyle::kJournal;
    return systemd && !to_file ? LogStyle::kJournal : LogStyle::kText;
}

Status init_logging(const Config& cfg) {
    auto level = spdlog::level::from_str(cfg.log_level);
    if (level == spdlog::level::off && cfg.log_level != "off")
        return Status::invalid_argument("log_level: unknown level \"" + cfg.log_level + "\"");
    const bool to_file = !cfg.log_file.empty();
    LogStyle style = resolve_log_style(cfg.log_format, to_file, under_systemd());

    std::shared_ptr<LineSink> sink;
    if (to_file) {
        auto fd = LineSink::open_log_file(cfg.log_file);
        if (!fd) return fd.status();
        sink = std::make_shared<LineSink>(*fd, true, cfg.log_file, style == LogStyle::kJournal);
    } else {
        sink = std::make_shared<LineSink>(STDERR_FILENO, false, "", style == LogStyle::kJournal);
    }
    // The node id is fixed for the life of the process, so it is baked into the pattern.
    std::string who = "n" + std::to_string(cfg.node_id) + ": %v";
    std::string pattern =
        style == LogStyle::kText ? "%Y-%m-%dT%H:%M:%S.%e [%l] " + who : "[%l] " + who;
    sink->set_formatter(std::make_unique<spdlog::pattern_formatter>(pattern));

    auto logger = std::make_shared<spdlog::logger>("raftd", sink);
    logger->set_level(level);
    logger->flush_on(spdlog::level::trace);
    spdlog::set_default_logger(logger);
    g_sink = std::move(sink);
    return Status::ok();
}

Status reopen_logs() {
    if (!g_sink) return Status::ok();
    return g_sink->reopen();
}

}  // namespace raftd::daemon
