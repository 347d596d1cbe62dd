// Keeps ferry_tools a valid library while its folders fill up.
