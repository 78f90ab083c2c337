#!/bin/sh
# Refresh the dashboard's vendored Apache ECharts (static/echarts.min.js and its licence)
# from the npm registry: `app/dashboard/vendor_echarts.sh 6.1.0`. Nothing is fetched at
# run time; the page loads the copy in static/. Needs npm; run from anywhere.
set -eu
VERSION=${1:?usage: vendor_echarts.sh VERSION (e.g. 6.1.0)}
STATIC=$(cd "$(dirname "$0")" && pwd)/static
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
npm pack --silent "echarts@$VERSION" >/dev/null
tar xzf "echarts-$VERSION.tgz"
cp package/dist/echarts.min.js "$STATIC/echarts.min.js"
# The Apache-2.0 text, the NOTICE, then the bundled d3 code's licence, in one file.
{
    cat package/LICENSE
    printf '\n\n---- NOTICE ----\n\n'
    cat package/NOTICE
    for extra in package/licenses/*; do
        printf '\n\n---- %s ----\n\n' "$(basename "$extra")"
        cat "$extra"
    done
} >"$STATIC/echarts.LICENSE.txt"
printf '%s\n' "$VERSION" >"$STATIC/echarts.VERSION"
echo "static/echarts.min.js is ECharts $VERSION ($(wc -c <"$STATIC/echarts.min.js") bytes)"
