// raftbench's latency histogram: every quantile within 1% of the exact order statistic.
#include "clients/bench/histogram.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>

using raftd::bench::LogLinearHistogram;

TEST_CASE("histogram_buckets_tile_the_value_range_without_gaps") {
    for (size_t i = 1; i < LogLinearHistogram::kBuckets; i++) {
        CHECK(LogLinearHistogram::lowest_of(i) == LogLinearHistogram::highest_of(i - 1) + 1);
    }
    for (uint64_t v : {0ull, 1ull, 255ull, 256ull, 257ull, 1000ull, 123456789ull, (1ull << 40) - 1}) {
        size_t i = LogLinearHistogram::index_of(v);
        CHECK(LogLinearHistogram::lowest_of(i) <= v);
        CHECK(v <= LogLinearHistogram::highest_of(i));
    }
}

TEST_CASE("histogram_quantiles_are_within_one_percent_of_exact") {
    std::mt19937_64 rng(42);
    // Log-normal latencies around 100 us with a long tail, as a loaded server shows.
    std::lognormal_distribution<double> dist(std::log(100000.0), 1.2);
    std::vector<uint64_t> values;
    LogLinearHistogram h;
    for (int i = 0; i < 200000; i++) {
        uint64_t v = uint64_t(dist(rng)) + 1;
        values.push_back(v);
        h.record(v);
    }
    std::sort(values.begin(), values.end());
    for (double q : {0.0, 0.5, 0.9, 0.99, 0.999, 1.0}) {
        size_t rank = std::max<size_t>(1, size_t(std::ceil(q * double(values.size()))));
        double exact = double(values[rank - 1]);
        double got = double(h.quantile(q));
        CAPTURE(q);
        CHECK(std::abs(got - exact) <= 0.01 * exact);
    }
    CHECK(h.max() == values.back());
    CHECK(h.min() == values.front());
    CHECK(h.count() == values.size());
}

TEST_CASE("histogram_small_values_are_exact_and_merge_adds") {
    LogLinearHistogram a, b;
    for (uint64_t v = 1; v <= 100; v++) a.record(v);
    for (uint64_t v = 101; v <= 200; v++) b.record(v);
    CHECK(a.quantile(0.5) == 50);
    a.merge(b);
    CHECK(a.count() == 200);
    CHECK(a.quantile(0.5) == 100);
    CHECK(a.quantile(1.0) == 200);
    CHECK(a.max() == 200);
    LogLinearHistogram empty;
    CHECK(empty.quantile(0.99) == 0);
    CHECK(empty.max() == 0);
}
