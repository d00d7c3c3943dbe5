/* The verify page's first visit: ask the phone for its position, then reload with it
 * (lat/lng), or with geo=0 when it is refused, unavailable or slow. */
(function () {
  var done = false;
  function go(query) {
    if (done) { return; }
    done = true;
    window.location.replace(window.location.pathname + "?" + query);
  }
  if (!navigator.geolocation) { go("geo=0"); return; }
  window.setTimeout(function () { go("geo=0"); }, 8000);
  navigator.geolocation.getCurrentPosition(function (position) {
    go("lat=" + position.coords.latitude.toFixed(4) +
       "&lng=" + position.coords.longitude.toFixed(4));
  }, function () { go("geo=0"); }, {timeout: 7000, maximumAge: 600000});
}());
