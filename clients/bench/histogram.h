// A log-linear latency histogram in the style of HdrHistogram: exact below 256, then 128
// equal buckets per power of two, so any recorded value is reported within 1/256 (0.4%) of
// itself (the bucket's midpoint), well inside raftbench's 1% promise. Fixed memory
// (~34 KiB for values up to 2^40 ns, 18 minutes), O(1) record, no allocation after
// construction.
//
// Owns: its counters. Never: allocate in record() or lose a value (larger ones are clamped
// into the top bucket and max() still reports them exactly).
// Thread rules: none; one histogram per thread, merge() afterwards.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <vector>

namespace raftd::bench {

class LogLinearHistogram {
  public:
    static constexpr int kSubBits = 7;  // 128 sub-buckets per octave
    static constexpr int kMaxShift = 33;  // values up to 2^(33+8) - 1
    static constexpr size_t kBuckets = (kMaxShift + 2) << kSubBits;

    LogLinearHistogram() : counts_(kBuckets, 0) {}

    void record(uint64_t v) {
        counts_[index_of(v)]++;
        total_++;
        max_ = std::max(max_, v);
        min_ = std::min(min_, v);
        sum_ += v;
    }

    void merge(const LogLinearHistogram& o) {
        for (size_t i = 0; i < kBuckets; i++) counts_[i] += o.counts_[i];
        total_ += o.total_;
        max_ = std::max(max_, o.max_);
        min_ = std::min(min_, o.min_);
        sum_ += o.sum_;
    }

    void reset() { *this = LogLinearHistogram(); }

    uint64_t count() const { return total_; }
    uint64_t max() const { return total_ ? max_ : 0; }
    uint64_t min() const { return total_ ? min_ : 0; }
    double mean() const { return total_ ? double(sum_) / double(total_) : 0.0; }

    // The value at quantile q in [0, 1]: the midpoint of the bucket holding the
    // ceil(q * count)-th smallest value, clamped to [min, max].
    uint64_t quantile(double q) const {
        if (total_ == 0) return 0;
        uint64_t rank = uint64_t(q * double(total_) + 0.999999999);
        rank = std::clamp<uint64_t>(rank, 1, total_);
        uint64_t seen = 0;
        for (size_t i = 0; i < kBuckets; i++) {
            seen += counts_[i];
            if (seen >= rank) {
                uint64_t lo = lowest_of(i), hi = highest_of(i);
                return std::clamp<uint64_t>(lo + (hi - lo) / 2, min_, max_);
            }
        }
        return max_;
    }

    // Bucket arithmetic, public for the tests.
    static size_t index_of(uint64_t v) {
        int msb = v ? 63 - std::countl_zero(v) : 0;
        int shift = std::max(0, msb - kSubBits);
        if (shift > kMaxShift) return kBuckets - 1;
        return (size_t(shift) << kSubBits) + size_t(v >> shift);
    }
    // Index i < 256 holds exactly the value i; above, i = (s << 7) + (v >> s) with
    // v >> s in [128, 255], so s = (i >> 7) - 1 and the bucket spans 2^s values.
    static uint64_t lowest_of(size_t i) {
        if (i < 256) return i;
        size_t s = (i >> kSubBits) - 1;
        return uint64_t(i - (s << kSubBits)) << s;
    }
    static uint64_t highest_of(size_t i) {
        if (i < 256) return i;
        size_t s = (i >> kSubBits) - 1;
        return lowest_of(i) + (uint64_t(1) << s) - 1;
    }

  private:
    std::vector<uint64_t> counts_;
    uint64_t total_ = 0;
    uint64_t max_ = 0;
    uint64_t min_ = UINT64_MAX;
    uint64_t sum_ = 0;
};

}  // namespace raftd::bench
